func runDemo(_ args: inout Arguments) async throws -> Int32 { notYetAvailable("demo") }
