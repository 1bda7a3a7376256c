import SeedZip

/// Opens the input as an archive with tight limits, as the package import does, then extracts every member.
/// Whatever the bytes, nothing may trap, every accepted member must be safe to write and lie inside the
/// archive, and extraction may never produce more than the member declares or the limits allow.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let source = ZipBytes(Array(UnsafeBufferPointer(start: data, count: size)))
    let limits = ZipLimits(
        maxMembers: 64, maxTotalUncompressedBytes: 1 << 20, maxCompressionRatio: 50, ratioExemptBytes: 4096)
    let archive: ZipArchive
    do {
        archive = try ZipArchive(source: source, limits: limits)
    } catch {
        precondition(!error.description.isEmpty, "a refusal without a reason")
        return 0
    }
    precondition(archive.entries.count <= limits.maxMembers, "more members than the limit")
    var declared: UInt64 = 0
    var keys = Set<String>()
    for e in archive.entries {
        precondition(unsafePathReason(e.name) == nil, "accepted an unsafe name")
        precondition(keys.insert(windowsKey(e.name)).inserted, "accepted a duplicate name")
        precondition(e.method == 0 || e.method == 8, "accepted an unsupported method")
        precondition(e.dataOffset <= source.size && e.compressedSize <= source.size - e.dataOffset,
            "member data outside the archive")
        declared += e.uncompressedSize
    }
    precondition(declared <= limits.maxTotalUncompressedBytes, "declared sizes above the limit")

    // Small chunks so the inflater is fed across many calls; the chunk size varies with the input.
    let chunk = 1 + size % 97
    var total: UInt64 = 0
    for e in archive.entries {
        var produced: UInt64 = 0
        do {
            let n = try archive.extract(e, from: source, chunkSize: chunk) { produced += UInt64($0.count) }
            precondition(n == produced && n == e.uncompressedSize, "extract reported a wrong count")
        } catch {
            precondition(!error.description.isEmpty, "an extraction error without a reason")
        }
        precondition(produced <= e.uncompressedSize, "inflated past the declared size")
        total += produced
        if e.uncompressedSize <= 4096, let whole = try? archive.contents(of: e, from: source) {
            precondition(UInt64(whole.count) == e.uncompressedSize, "contents differ from the declared size")
        }
    }
    precondition(total <= limits.maxTotalUncompressedBytes, "extracted more than the limit")
    return 0
}
