import SeedHTTP

/// Evaluates the input as a Range header against a length taken from its first bytes; a partial range must
/// always lie inside the representation.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard input.count >= 2 else { return 0 }
    // Small lengths most of the time, sometimes huge ones.
    let length: UInt64 = input[0] & 0x80 == 0 ? UInt64(input[0]) : UInt64.max >> UInt64(input[1] % 64)
    let header = String(decoding: input.dropFirst(2), as: UTF8.self)
    switch evaluateRange(header, length: length) {
    case .partial(let start, let end):
        precondition(start <= end && end < length, "partial range outside the representation")
    case .unsatisfiable, .full:
        break
    }
    if ifRangeMatches(header, etag: header) {
        let start = header.utf8.first
        precondition(start == UInt8(ascii: "\"") || start == 0x20 || start == 0x09, "non-tag matched")
    }
    return 0
}
