import SeedStore
import Testing

@Test func moduleLinks() {}
