import SeedZip
import Testing

@Test func moduleLinks() {}
