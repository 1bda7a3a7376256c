func runImportBundle(_ args: inout Arguments) async throws -> Int32 { notYetAvailable("import-bundle") }
