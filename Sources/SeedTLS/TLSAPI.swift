// Public surface of SeedTLS that other targets code against. Bodies are filled in by the transport work.
import CSeedOpenSSL

/// An OpenSSL failure: the step that failed and every reason drained from the error queue.
public struct TLSError: Error, Sendable, CustomStringConvertible {
    public var step: String
    public var reasons: [String]
    public var path: String?

    public init(step: String, reasons: [String], path: String? = nil) {
        self.step = step
        self.reasons = reasons
        self.path = path
    }

    public var description: String {
        var s = step
        if let path { s += " \(path)" }
        if !reasons.isEmpty { s += ": " + reasons.joined(separator: "; ") }
        return s
    }
}

/// A certificate chain and its private key, as PEM files.
public struct CertificateKeyPair: Sendable, Equatable {
    public var certificateChainPath: String
    public var privateKeyPath: String
    public init(certificateChainPath: String, privateKeyPath: String) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
    }
}

/// Server-side TLS settings: TLS 1.2 and 1.3 only.
public struct TLSServerConfiguration: Sendable, Equatable {
    /// One pair per key type (RSA and ECDSA); OpenSSL picks what the client supports.
    public var certificates: [CertificateKeyPair]
    /// TLS 1.2 suites, modern AEAD first, then the Windows-compatible ones (PROTOCOL.md §4).
    public var cipherList: String =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        + "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
        + "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA384"
    /// TLS 1.3 suites.
    public var cipherSuites: String = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    public var sessionCacheSize: Int = 20_000
    public var sessionTickets: Bool = true

    public init(certificates: [CertificateKeyPair]) { self.certificates = certificates }
}

/// A server SSL_CTX built once from a configuration; shared by every loop. Replaced whole on SIGHUP.
public final class TLSServerContext: @unchecked Sendable {
    public init(configuration: TLSServerConfiguration) throws(TLSError) {
        fatalError("TLSServerContext: not implemented yet")
    }
}

/// A client SSL_CTX: verifies the peer against `caFile` (PEM) or the system store when nil.
public final class TLSClientContext: @unchecked Sendable {
    public init(caFile: String?, verifyPeer: Bool = true) throws(TLSError) {
        fatalError("TLSClientContext: not implemented yet")
    }
}
