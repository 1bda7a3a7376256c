import Foundation
import SeedServer

/// Decodes the input as the configuration file, through the real `MirrorConfig.parse`. Nothing may trap
/// (numbers out of range, wrong types, odd addresses must all be errors with a reason), and an accepted
/// configuration has at least one listen address and no duplicates.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    // Secret values may name a file to read; keep the fuzzer away from device and kernel files
    // (reading /dev/zero never ends, which is the operator's choice and not a decoding bug).
    for bad in ["dev/", "proc/", "sys/", "/dev", "/proc", "/sys"] where contains(input, Array(bad.utf8)) {
        return 0
    }
    check(input)
    return 0
}

private func check(_ input: [UInt8]) {
    do {
        let c = try MirrorConfig.parse(Data(input), source: "fuzz.json", baseDir: "/nonexistent/fuzz-base")
        precondition(!c.listen.isEmpty, "accepted a configuration without a listen address")
        precondition(Set(c.listen.map { "\($0)" }).count == c.listen.count, "accepted a duplicate listen address")
    } catch {
        precondition(!error.message.isEmpty, "an error without a reason")
    }
}

private func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
    guard needle.count <= hay.count else { return false }
    for i in 0...(hay.count - needle.count) where hay[i..<(i + needle.count)].elementsEqual(needle) { return true }
    return false
}
