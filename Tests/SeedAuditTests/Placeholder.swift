import SeedAudit
import Testing

@Test func moduleLinks() {}
