import SeedServer
import Testing

@Test func moduleLinks() {}
