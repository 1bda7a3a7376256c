import SeedStore

/// Parses the input as a package manifest from the cache (`Manifest.parse`, which the store runs on every file
/// it loads). Nothing may trap; an accepted manifest is canonical: it re-encodes to exactly the input, parses
/// back to an equal value, and its key names are safe folder names.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let m: Manifest
    do {
        m = try Manifest.parse(input, name: "fuzz")
    } catch {
        precondition(!error.description.isEmpty, "a refusal without a reason")
        return 0
    }
    let encoded = m.canonicalJSON()
    precondition(encoded == input, "an accepted manifest is not canonical")
    guard let again = try? Manifest.parse(encoded, name: "fuzz") else {
        preconditionFailure("the canonical form of an accepted manifest does not parse")
    }
    precondition(again == m && again.digest == m.digest, "re-parsing changed the manifest")
    for part in [m.key.product, m.key.os, m.key.arch, m.key.variant] {
        precondition(!part.isEmpty && !part.hasPrefix(".") && !part.contains("/"), "unsafe key part \(part)")
    }
    return 0
}
