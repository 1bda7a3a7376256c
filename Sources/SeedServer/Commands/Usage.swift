func runUsage(_ args: inout Arguments) async throws -> Int32 { notYetAvailable("usage") }
