import SeedHTTP

/// Decodes the input as a form and a query, and redacts it as a target; checks round trips and that no
/// token value survives redaction.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = percentDecode(text[...], plusAsSpace: false)
    if !text.utf8.contains(UInt8(ascii: "%")) {
        precondition(percentDecode(text[...], plusAsSpace: false) == text, "decoding changed plain text")
    }
    if let pairs = try? decodeFormURLEncoded(text[...]) {
        // Re-encoding every byte and decoding again must give the same pairs.
        let encoded = pairs.map { encode($0.name) + "=" + encode($0.value) }.joined(separator: "&")
        guard let again = try? decodeFormURLEncoded(encoded[...]) else { preconditionFailure("round trip threw") }
        precondition(again.map(\.name) == pairs.map(\.name) && again.map(\.value) == pairs.map(\.value), "round trip")
    }
    let target = "/p?" + text
    let redacted = Array(redactTokens(inTarget: target).utf8)
    precondition(redacted.starts(with: "/p?".utf8), "redaction touched the path")
    for pair in redacted.dropFirst(3).split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: false) {
        guard let eq = pair.firstIndex(of: UInt8(ascii: "=")) else { continue }
        let rawName = String(decoding: pair[..<eq], as: UTF8.self)
        let name = percentDecode(rawName[...], plusAsSpace: true) ?? rawName
        if name.lowercased() == "token" {
            precondition(pair[(eq + 1)...].elementsEqual("REDACTED".utf8), "a token survived redaction")
        }
    }
    return 0
}

private func encode(_ s: String) -> String {
    let hex = Array("0123456789ABCDEF".utf8)
    var out: [UInt8] = []
    for b in s.utf8 { out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 15)]] }
    return String(decoding: out, as: UTF8.self)
}
