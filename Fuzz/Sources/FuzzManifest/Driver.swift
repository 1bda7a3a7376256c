import FuzzDriver

@_cdecl("FuzzManifest_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    // A closure, not `fuzzTestOneInput` itself: naming a `@_cdecl` function as a C pointer emits its symbol twice.
    runFuzzer(argc, argv) { data, size in fuzzTestOneInput(data, size) }
}
