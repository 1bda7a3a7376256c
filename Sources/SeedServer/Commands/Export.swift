func runExport(_ args: inout Arguments) async throws -> Int32 { notYetAvailable("export") }
