internal import CSeedOpenSSL
import SeedCore

/// SHA-256 of bytes as 64 lower-case hex digits (the audit chain's link).
public func sha256Hex(_ bytes: some Collection<UInt8>) -> String {
    var out = [UInt8](repeating: 0, count: 32)
    var len: UInt32 = 0
    let ok = bytes.withContiguousStorageIfAvailable { buf in
        EVP_Digest(buf.baseAddress, buf.count, &out, &len, EVP_sha256(), nil)
    } ?? Array(bytes).withUnsafeBufferPointer { buf in
        EVP_Digest(buf.baseAddress, buf.count, &out, &len, EVP_sha256(), nil)
    }
    precondition(ok == 1 && len == 32, "EVP_Digest(SHA-256) failed")
    return hexString(out)
}

/// The `prev` value of the first record of a chain.
public let auditGenesisHash = String(repeating: "0", count: 64)
