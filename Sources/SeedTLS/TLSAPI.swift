// Public surface of SeedTLS that other targets code against.
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

    /// Drains this thread's OpenSSL error queue to empty, keeping each reason's text.
    public static func capture(_ step: String, path: String? = nil) -> TLSError {
        TLSError(step: step, reasons: openSSLErrorReasons(), path: path)
    }

    public var description: String {
        var s = step
        if let path { s += " \(path)" }
        if !reasons.isEmpty { s += ": " + reasons.joined(separator: "; ") }
        return s
    }
}

/// Drains this thread's OpenSSL error queue to empty and returns each reason's text, oldest first.
public func openSSLErrorReasons() -> [String] {
    var reasons: [String] = []
    while true {
        let code = ERR_get_error()
        if code == 0 { break }
        var text = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &text, text.count)
        reasons.append(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return reasons
}

/// `openSSLErrorReasons()` as one line for an error message ("no OpenSSL reason" when the queue was empty).
public func openSSLErrorText() -> String {
    let reasons = openSSLErrorReasons()
    return reasons.isEmpty ? "no OpenSSL reason" : reasons.joined(separator: "; ")
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

/// A TLS protocol version this code will speak; nothing older than 1.2 exists here on purpose.
public enum TLSProtocolVersion: Sendable, Equatable {
    case tls12, tls13

    var openSSLValue: Int32 {
        switch self {
        case .tls12: TLS1_2_VERSION
        case .tls13: TLS1_3_VERSION
        }
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

// Whatever the configured list says, these never get negotiated.
private let forbiddenCiphers = ":!aNULL:!eNULL:!EXPORT:!RC4:!3DES:!DES:!MD5:!PSK:!SRP:!CAMELLIA:!SEED:!IDEA"

/// A server SSL_CTX built once from a configuration; shared by every loop. Replaced whole on SIGHUP.
/// Thread-safe after init: OpenSSL allows many SSL objects to be created from one context concurrently.
public final class TLSServerContext: @unchecked Sendable {
    let context: OpaquePointer
    public let configuration: TLSServerConfiguration

    public init(configuration: TLSServerConfiguration) throws(TLSError) {
        _ = seed_OPENSSL_init()
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw TLSError.capture("SSL_CTX_new") }
        context = ctx  // from here on deinit frees it, also when a later step throws
        self.configuration = configuration
        guard seed_SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1,
            seed_SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1
        else { throw TLSError.capture("setting TLS versions 1.2-1.3") }
        _ = seed_SSL_CTX_set_options64(
            ctx,
            seed_SSL_OP_NO_RENEGOTIATION() | seed_SSL_OP_CIPHER_SERVER_PREFERENCE() | seed_SSL_OP_NO_COMPRESSION()
                | (configuration.sessionTickets ? 0 : seed_SSL_OP_NO_TICKET()))
        guard SSL_CTX_set_cipher_list(ctx, configuration.cipherList + forbiddenCiphers) == 1 else {
            throw TLSError.capture("TLS 1.2 cipher list \"\(configuration.cipherList)\" selects nothing usable")
        }
        guard SSL_CTX_set_ciphersuites(ctx, configuration.cipherSuites) == 1 else {
            throw TLSError.capture("TLS 1.3 cipher suites \"\(configuration.cipherSuites)\" are invalid")
        }
        _ = seed_SSL_CTX_set_dh_auto(ctx, 1)
        // Idle connections must not keep 2 x 17 KiB record buffers each (10,000 idle clients).
        _ = seed_SSL_CTX_set_mode(ctx, Int(SSL_MODE_RELEASE_BUFFERS))
        let sid = Array("seedmirror".utf8)
        _ = SSL_CTX_set_session_id_context(ctx, sid, UInt32(sid.count))
        _ = seed_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_SERVER))
        _ = seed_SSL_CTX_sess_set_cache_size(ctx, configuration.sessionCacheSize)
        _ = SSL_CTX_set_num_tickets(ctx, configuration.sessionTickets ? 1 : 0)
        guard !configuration.certificates.isEmpty else {
            throw TLSError(step: "TLS server configuration has no certificate", reasons: [])
        }
        for pair in configuration.certificates {
            guard SSL_CTX_use_certificate_chain_file(ctx, pair.certificateChainPath) == 1 else {
                throw TLSError.capture("loading certificate chain", path: pair.certificateChainPath)
            }
            guard SSL_CTX_use_PrivateKey_file(ctx, pair.privateKeyPath, SSL_FILETYPE_PEM) == 1 else {
                throw TLSError.capture("loading private key", path: pair.privateKeyPath)
            }
            guard SSL_CTX_check_private_key(ctx) == 1 else {
                throw TLSError.capture("private key does not match certificate", path: pair.privateKeyPath)
            }
        }
    }

    deinit { SSL_CTX_free(context) }
}

/// A client SSL_CTX: verifies the peer against `caFile` (PEM) or the system store when nil.
/// `minimumVersion`/`maximumVersion`, `cipherList` (TLS 1.2) and `cipherSuites` (TLS 1.3) narrow what the
/// client offers; nil keeps OpenSSL's defaults.
public final class TLSClientContext: @unchecked Sendable {
    let context: OpaquePointer
    public let verifyPeer: Bool

    public init(
        caFile: String?, verifyPeer: Bool = true, minimumVersion: TLSProtocolVersion = .tls12,
        maximumVersion: TLSProtocolVersion = .tls13, cipherList: String? = nil, cipherSuites: String? = nil
    ) throws(TLSError) {
        _ = seed_OPENSSL_init()
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw TLSError.capture("SSL_CTX_new") }
        context = ctx
        self.verifyPeer = verifyPeer
        guard seed_SSL_CTX_set_min_proto_version(ctx, minimumVersion.openSSLValue) == 1,
            seed_SSL_CTX_set_max_proto_version(ctx, maximumVersion.openSSLValue) == 1
        else { throw TLSError.capture("setting client TLS versions") }
        _ = seed_SSL_CTX_set_options64(ctx, seed_SSL_OP_NO_RENEGOTIATION() | seed_SSL_OP_NO_COMPRESSION())
        _ = seed_SSL_CTX_set_mode(ctx, Int(SSL_MODE_RELEASE_BUFFERS))
        if let cipherList {
            guard SSL_CTX_set_cipher_list(ctx, cipherList + forbiddenCiphers) == 1 else {
                throw TLSError.capture("client cipher list \"\(cipherList)\" selects nothing usable")
            }
        }
        if let cipherSuites {
            guard SSL_CTX_set_ciphersuites(ctx, cipherSuites) == 1 else {
                throw TLSError.capture("client TLS 1.3 suites \"\(cipherSuites)\" are invalid")
            }
        }
        if let caFile {
            guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
                throw TLSError.capture("loading CA certificates", path: caFile)
            }
        } else {
            guard SSL_CTX_set_default_verify_paths(ctx) == 1 else {
                throw TLSError.capture("loading the system certificate store")
            }
        }
        SSL_CTX_set_verify(ctx, verifyPeer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nil)
    }

    deinit { SSL_CTX_free(context) }
}
