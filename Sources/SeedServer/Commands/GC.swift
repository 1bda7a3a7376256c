func runGC(_ args: inout Arguments) async throws -> Int32 { notYetAvailable("gc") }
