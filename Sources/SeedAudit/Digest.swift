internal import CSeedOpenSSL
import SeedCore

/// SHA-256, fetched from OpenSSL's default provider once: `EVP_sha256()` in `EVP_Digest` makes OpenSSL 3
/// look the algorithm up again on every call, which costs more than hashing one audit line.
nonisolated(unsafe) private let sha256Algorithm: OpaquePointer? = EVP_MD_fetch(nil, "SHA256", nil)

/// SHA-256 of bytes as 64 lower-case hex digits (the audit chain's link).
public func sha256Hex(_ bytes: some Collection<UInt8>) -> String {
    var out = [UInt8](repeating: 0, count: 32)
    var len: UInt32 = 0
    let md = sha256Algorithm ?? EVP_sha256()
    let ok = bytes.withContiguousStorageIfAvailable { buf in
        EVP_Digest(buf.baseAddress, buf.count, &out, &len, md, nil)
    } ?? Array(bytes).withUnsafeBufferPointer { buf in
        EVP_Digest(buf.baseAddress, buf.count, &out, &len, md, nil)
    }
    precondition(ok == 1 && len == 32, "EVP_Digest(SHA-256) failed")
    // Lower-case hex written straight into the String's storage (the generic `hexString` walked an iterator
    // and showed at 2-3% of the audit writer's time under load).
    return String(unsafeUninitializedCapacity: 64) { dst in
        let digits: StaticString = "0123456789abcdef"
        let d = digits.utf8Start
        for i in 0..<32 {
            dst[2 * i] = d[Int(out[i] >> 4)]
            dst[2 * i + 1] = d[Int(out[i] & 0x0F)]
        }
        return 64
    }
}

/// The `prev` value of the first record of a chain.
public let auditGenesisHash = String(repeating: "0", count: 64)
