func runLicenses(_ args: inout Arguments) async throws -> Int32 { notYetAvailable("licenses") }
