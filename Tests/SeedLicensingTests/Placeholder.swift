import SeedLicensing
import Testing

@Test func moduleLinks() {}
