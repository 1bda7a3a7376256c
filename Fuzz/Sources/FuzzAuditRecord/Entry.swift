import SeedAudit

/// Parses the input as one audit line, as the verifier does with files an attacker may have edited.
/// Nothing may trap; an accepted record must render back to a line that parses to the same record, and that
/// rendering must be canonical (rendering it again gives the same bytes). Also checks that any time the
/// parser accepts renders and re-parses to the same instant.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    switch AuditRecord.parse(input) {
    case .failure(let e):
        precondition(!e.reason.isEmpty, "a refusal without a reason")
    case .success(let r):
        // The writer renders years 0000-9999 only; the line of a record outside them cannot round-trip.
        if inRenderableRange(r.time) {
            let line = r.line
            guard case .success(let again) = AuditRecord.parse(Array(line.utf8)) else {
                preconditionFailure("the canonical line of an accepted record does not parse: \(line)")
            }
            precondition(again == r, "the canonical line parses to a different record")
            precondition(again.line == line, "rendering is not canonical")
            precondition(!line.utf8.contains(0x0A), "a rendered line contains a newline")
        }
    }
    // The time parser on its own (the input as text).
    if let t = AuditTime(parsing: String(decoding: input, as: UTF8.self)), inRenderableRange(t) {
        precondition(AuditTime(parsing: t.rfc3339) == t, "time \(t.rfc3339) does not round-trip")
    }
    return 0
}

private func inRenderableRange(_ t: AuditTime) -> Bool {
    // 0000-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z
    t.millisecondsSinceEpoch >= -62_167_219_200_000 && t.millisecondsSinceEpoch <= 253_402_300_799_999
}
