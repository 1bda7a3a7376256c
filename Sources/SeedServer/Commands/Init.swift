func runInit(_ args: inout Arguments) async throws -> Int32 { notYetAvailable("init") }
