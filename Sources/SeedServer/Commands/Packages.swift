func runPackages(_ args: inout Arguments) async throws -> Int32 { notYetAvailable("packages") }
