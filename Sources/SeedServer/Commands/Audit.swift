func runAudit(_ args: inout Arguments) async throws -> Int32 { notYetAvailable("audit") }
