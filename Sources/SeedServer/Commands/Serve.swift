func runServe(_ args: inout Arguments) async throws -> Int32 { notYetAvailable("serve") }
