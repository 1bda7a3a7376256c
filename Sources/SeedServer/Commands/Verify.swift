func runVerify(_ args: inout Arguments) async throws -> Int32 { notYetAvailable("verify") }
