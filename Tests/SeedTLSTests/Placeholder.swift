import SeedTLS
import Testing

@Test func moduleLinks() {}
