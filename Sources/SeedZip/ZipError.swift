/// A ZIP archive refused or unreadable: what is wrong and, when known, with which member.
public struct ZipError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case noEndOfCentralDirectory
        case truncated(String)
        case corrupt(String)
        case multiDisk
        case unsafePath(String)
        case duplicateName(String)
        case encrypted
        case unsupportedMethod(UInt16)
        case sizeMismatch(String)
        case crcMismatch(expected: UInt32, actual: UInt32)
        case compressionRatio(ratio: UInt64, limit: UInt64)
        case tooManyMembers(count: UInt64, limit: Int)
        case tooLarge(bytes: UInt64, limit: UInt64)
        case inflate(String)
        case io(String)
    }
    public var kind: Kind
    /// The member's name as stored in the archive, when the problem concerns one member.
    public var member: String?

    public init(_ kind: Kind, member: String? = nil) {
        self.kind = kind
        self.member = member
    }

    public var description: String {
        let what: String
        switch kind {
        case .noEndOfCentralDirectory: what = "no end-of-central-directory record: not a ZIP file, or truncated"
        case .truncated(let s): what = "archive is truncated: \(s)"
        case .corrupt(let s): what = "archive is corrupt: \(s)"
        case .multiDisk: what = "multi-disk (spanned) archives are not supported"
        case .unsafePath(let why): what = "path would escape the target folder (\(why))"
        case .duplicateName(let other):
            what = "duplicate name: collides with \"\(other)\" on a case-insensitive file system"
        case .encrypted: what = "member is encrypted; encrypted archives are refused"
        case .unsupportedMethod(let m): what = "compression method \(m) is not supported (only 0 stored and 8 deflate)"
        case .sizeMismatch(let s): what = "sizes do not match: \(s)"
        case .crcMismatch(let e, let a):
            what = "CRC-32 mismatch: header says \(hex32(e)), content gives \(hex32(a))"
        case .compressionRatio(let r, let l): what = "compression ratio \(r):1 exceeds the limit \(l):1 (zip bomb?)"
        case .tooManyMembers(let c, let l): what = "archive has \(c) members, more than the limit \(l)"
        case .tooLarge(let b, let l): what = "archive expands to \(b) bytes, more than the limit \(l)"
        case .inflate(let s): what = "deflate data is invalid: \(s)"
        case .io(let s): what = "read failed: \(s)"
        }
        if let member { return "ZIP member \"\(member)\": \(what)" }
        return "ZIP: \(what)"
    }
}

func hex32(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - s.count) + s
}
