// The internal CA that `seed-mirror init` creates, and server certificates signed by it.
// Everything goes through the OpenSSL 3 C API; the `openssl` command is never run.
internal import CSeedOpenSSL
public import Foundation
import Glibc

/// The key algorithm of a certificate minted here.
public enum CertificateKeyType: String, Sendable, CaseIterable {
    /// RSA 3072: the one old Windows TLS 1.2 stacks can use (PROTOCOL.md §4).
    case rsa3072 = "rsa"
    /// ECDSA on P-256: smaller and faster for every modern client.
    case ecdsaP256 = "ecdsa"
}

/// A certificate and its private key as PEM text, as minted by `CertificateAuthority`.
public struct IssuedCertificate: Sendable, Equatable {
    /// The certificate alone.
    public var certificatePEM: String
    /// The certificate followed by its issuer's certificate (what a server sends); equal to
    /// `certificatePEM` for a self-signed CA.
    public var chainPEM: String
    /// PKCS#8 private key. Secret: write it only with mode 0600.
    public var privateKeyPEM: String
    /// The serial number as lower-case hex without leading zeros.
    public var serialHex: String
    public var keyType: CertificateKeyType

    public init(
        certificatePEM: String, chainPEM: String, privateKeyPEM: String, serialHex: String,
        keyType: CertificateKeyType
    ) {
        self.certificatePEM = certificatePEM
        self.chainPEM = chainPEM
        self.privateKeyPEM = privateKeyPEM
        self.serialHex = serialHex
        self.keyType = keyType
    }
}

/// The files `writeDevelopmentPKI` wrote.
public struct DevelopmentPKI: Sendable, Equatable {
    public var caCertificatePath: String
    public var caKeyPath: String
    /// `server-rsa.pem` (leaf + CA) and `server-rsa.key`.
    public var rsa: CertificateKeyPair
    /// `server-ecdsa.pem` (leaf + CA) and `server-ecdsa.key`.
    public var ecdsa: CertificateKeyPair
    /// True when an existing CA was kept and only the server certificates were issued anew.
    public var reusedCA: Bool

    /// Both server pairs, RSA first, ready for `TLSServerConfiguration`.
    public var serverPairs: [CertificateKeyPair] { [rsa, ecdsa] }
}

/// Creates the internal CA and signs server certificates with it. Stateless; safe from any thread.
public enum CertificateAuthority {
    /// Longest server certificate lifetime that browsers and Apple clients accept.
    public static let maxServerValidityDays = 397

    /// Creates a self-signed CA: EC P-256 key, basicConstraints CA:TRUE (critical), keyUsage
    /// keyCertSign + cRLSign, subject and authority key ids, a random 128-bit serial.
    public static func createCA(commonName: String, validityDays: Int = 3650) throws(TLSError)
        -> IssuedCertificate
    {
        guard validityDays >= 1 && validityDays <= 36500 else {
            throw TLSError(step: "CA validity of \(validityDays) days is out of range 1...36500", reasons: [])
        }
        clearErrors()
        let key = try generateKey(.ecdsaP256)
        let cert = try Certificate.new(step: "create CA certificate")
        try cert.setBasics(serialStep: "create CA certificate", validityDays: validityDays)
        let name = try makeName(commonName: commonName, step: "create CA certificate")
        defer { X509_NAME_free(name) }
        try check(X509_set_subject_name(cert.raw, name), "set CA subject")
        try check(X509_set_issuer_name(cert.raw, name), "set CA issuer")
        try check(X509_set_pubkey(cert.raw, key.raw), "set CA public key")
        try cert.addExtension(nid: NID_basic_constraints, value: "critical,CA:TRUE", issuer: cert)
        try cert.addExtension(nid: NID_key_usage, value: "critical,keyCertSign,cRLSign", issuer: cert)
        try cert.addExtension(nid: NID_subject_key_identifier, value: "hash", issuer: cert)
        try cert.addExtension(nid: NID_authority_key_identifier, value: "keyid:always", issuer: cert)
        try cert.sign(with: key, step: "sign CA certificate")
        let pem = try cert.pem()
        return IssuedCertificate(
            certificatePEM: pem, chainPEM: pem, privateKeyPEM: try key.pem(), serialHex: try cert.serialHex(),
            keyType: .ecdsaP256)
    }

    /// Issues a server certificate signed by `ca`: the names become subjectAltName entries (DNS names,
    /// and IPv4/IPv6 addresses as IP entries), extendedKeyUsage serverAuth, keyUsage digitalSignature
    /// (plus keyEncipherment for RSA), authority key id, random 128-bit serial. The first name is the CN.
    public static func issueServerCertificate(
        ca: IssuedCertificate, names: [String], keyType: CertificateKeyType, validityDays: Int = 397
    ) throws(TLSError) -> IssuedCertificate {
        guard validityDays >= 1 && validityDays <= maxServerValidityDays else {
            throw TLSError(
                step:
                    "server certificate validity of \(validityDays) days is out of range 1...\(maxServerValidityDays)",
                reasons: [])
        }
        let parsed = try parseNames(names)
        clearErrors()
        let caCert = try Certificate(pem: ca.certificatePEM, step: "read CA certificate")
        let caKey = try PrivateKey(pem: ca.privateKeyPEM, step: "read CA key")
        try check(X509_check_private_key(caCert.raw, caKey.raw), "CA certificate and key do not match")
        let key = try generateKey(keyType)
        let cert = try Certificate.new(step: "create server certificate")
        try cert.setBasics(serialStep: "create server certificate", validityDays: validityDays)
        let name = try makeName(commonName: String(parsed[0].text.prefix(64)), step: "create server certificate")
        defer { X509_NAME_free(name) }
        try check(X509_set_subject_name(cert.raw, name), "set server subject")
        try check(X509_set_issuer_name(cert.raw, X509_get_subject_name(caCert.raw)), "set server issuer")
        try check(X509_set_pubkey(cert.raw, key.raw), "set server public key")
        try cert.addExtension(nid: NID_basic_constraints, value: "critical,CA:FALSE", issuer: caCert)
        let usage = keyType == .rsa3072 ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature"
        try cert.addExtension(nid: NID_key_usage, value: usage, issuer: caCert)
        try cert.addExtension(nid: NID_ext_key_usage, value: "serverAuth", issuer: caCert)
        try cert.addExtension(nid: NID_subject_key_identifier, value: "hash", issuer: caCert)
        try cert.addExtension(nid: NID_authority_key_identifier, value: "keyid:always", issuer: caCert)
        try cert.addSubjectAltNames(parsed)
        try cert.sign(with: caKey, step: "sign server certificate")
        let pem = try cert.pem()
        return IssuedCertificate(
            certificatePEM: pem, chainPEM: pem + ca.certificatePEM, privateKeyPEM: try key.pem(),
            serialHex: try cert.serialHex(), keyType: keyType)
    }

    /// Reads an existing CA from its PEM files (certificate and key), checking that they match.
    public static func loadCA(certificatePath: String, keyPath: String) throws(TLSError) -> IssuedCertificate {
        let certPEM = try readText(certificatePath)
        let keyPEM = try readText(keyPath)
        clearErrors()
        let cert = try Certificate(pem: certPEM, step: "read CA certificate", path: certificatePath)
        let key = try PrivateKey(pem: keyPEM, step: "read CA key", path: keyPath)
        try check(X509_check_private_key(cert.raw, key.raw), "CA certificate and key do not match", path: keyPath)
        guard X509_check_ca(cert.raw) > 0 else {
            throw TLSError(step: "not a CA certificate", reasons: [], path: certificatePath)
        }
        return IssuedCertificate(
            certificatePEM: certPEM, chainPEM: certPEM, privateKeyPEM: keyPEM, serialHex: try cert.serialHex(),
            keyType: EVP_PKEY_get_base_id(key.raw) == EVP_PKEY_RSA ? .rsa3072 : .ecdsaP256)
    }

    /// Writes a complete `certs/` directory: `ca.pem`, `ca.key`, `server-rsa.pem`/`.key` and
    /// `server-ecdsa.pem`/`.key` (server files hold leaf + CA). Keys are created with mode 0600.
    /// With `reuseExistingCA` an existing `ca.pem`/`ca.key` pair is kept (so endpoints that trust it
    /// keep working) and only the server certificates are issued anew.
    @discardableResult
    public static func writeDevelopmentPKI(
        to dir: String, names: [String], caCommonName: String = "SeedMirror Internal CA",
        serverValidityDays: Int = 397, reuseExistingCA: Bool = false
    ) throws(TLSError) -> DevelopmentPKI {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw TLSError(step: "create certificate directory", reasons: [error.localizedDescription], path: dir)
        }
        let caPath = dir + "/ca.pem"
        let caKeyPath = dir + "/ca.key"
        let reuse =
            reuseExistingCA && FileManager.default.fileExists(atPath: caPath)
            && FileManager.default.fileExists(atPath: caKeyPath)
        let ca =
            reuse ? try loadCA(certificatePath: caPath, keyPath: caKeyPath) : try createCA(commonName: caCommonName)
        let rsa = try issueServerCertificate(ca: ca, names: names, keyType: .rsa3072, validityDays: serverValidityDays)
        let ec = try issueServerCertificate(ca: ca, names: names, keyType: .ecdsaP256, validityDays: serverValidityDays)
        if !reuse {
            try writeFileAtomically(caKeyPath, ca.privateKeyPEM, mode: 0o600)
            try writeFileAtomically(caPath, ca.certificatePEM, mode: 0o644)
        }
        let pki = DevelopmentPKI(
            caCertificatePath: caPath, caKeyPath: caKeyPath,
            rsa: CertificateKeyPair(
                certificateChainPath: dir + "/server-rsa.pem", privateKeyPath: dir + "/server-rsa.key"),
            ecdsa: CertificateKeyPair(
                certificateChainPath: dir + "/server-ecdsa.pem", privateKeyPath: dir + "/server-ecdsa.key"),
            reusedCA: reuse)
        try writeFileAtomically(pki.rsa.privateKeyPath, rsa.privateKeyPEM, mode: 0o600)
        try writeFileAtomically(pki.rsa.certificateChainPath, rsa.chainPEM, mode: 0o644)
        try writeFileAtomically(pki.ecdsa.privateKeyPath, ec.privateKeyPEM, mode: 0o600)
        try writeFileAtomically(pki.ecdsa.certificateChainPath, ec.chainPEM, mode: 0o644)
        return pki
    }

    /// Writes `text` to `path` through a temporary file created with `mode` (never chmod-ed later), then
    /// renames it over the target, so a reader sees the old or the new file and a key is never readable
    /// by others, not even for a moment.
    public static func writeFileAtomically(_ path: String, _ text: String, mode: UInt32) throws(TLSError) {
        let tmp = path + ".tmp-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode))
        guard fd >= 0 else { throw ioError("create", path: tmp) }
        var ok = true
        var failed = ""
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                ok = false
                failed = "write"
                break
            }
            offset += n
        }
        if ok && fsync(fd) != 0 {
            ok = false
            failed = "fsync"
        }
        let err = errno
        close(fd)
        guard ok else {
            unlink(tmp)
            throw TLSError(step: failed, reasons: [String(cString: strerror(err))], path: tmp)
        }
        guard rename(tmp, path) == 0 else {
            let e = ioError("rename", path: path)
            unlink(tmp)
            throw e
        }
        // The rename is durable only once the directory entry is on disk.
        let folder = (path as NSString).deletingLastPathComponent
        let dirfd = open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {
            _ = fsync(dirfd)
            close(dirfd)
        }
    }

    /// The name as a subjectAltName entry would hold it: `.ip` for IPv4/IPv6 text (brackets allowed),
    /// `.dns` for a valid host name (optionally `*.` wildcard); nil for anything else.
    public static func classify(name: String) -> SubjectAltName? {
        var s = name
        if s.hasPrefix("[") && s.hasSuffix("]") { s = String(s.dropFirst().dropLast()) }
        if let bytes = ipBytes(s) { return .ip(formatIP(bytes)) }
        guard isValidDNSName(name) else { return nil }
        return .dns(name.lowercased())
    }
}

/// One subjectAltName entry.
public enum SubjectAltName: Sendable, Hashable, CustomStringConvertible {
    case dns(String)
    /// Canonical text form (`127.0.0.1`, `::1`).
    case ip(String)

    public var description: String {
        switch self {
        case .dns(let n): "DNS:\(n)"
        case .ip(let a): "IP:\(a)"
        }
    }
}

/// What a PEM certificate says, read back through OpenSSL (for tests, `init` output and startup checks).
public struct CertificateDetails: Sendable {
    public var subjectCommonName: String
    public var issuerCommonName: String
    public var subjectAltNames: [SubjectAltName]
    public var keyType: CertificateKeyType?
    public var keyBits: Int
    public var serialHex: String
    public var isCA: Bool
    public var basicConstraintsCritical: Bool
    /// Names among digitalSignature, keyEncipherment, keyCertSign, cRLSign.
    public var keyUsage: Set<String>
    /// Names among serverAuth, clientAuth.
    public var extendedKeyUsage: Set<String>
    public var hasSubjectKeyIdentifier: Bool
    public var hasAuthorityKeyIdentifier: Bool
    public var notBefore: Date
    public var notAfter: Date

    /// Parses the first certificate in `pem`.
    public init(pem: String) throws(TLSError) {
        clearErrors()
        let cert = try Certificate(pem: pem, step: "read certificate")
        // `x` is borrowed from `cert`; keep the owner alive until every read below is done.
        defer { withExtendedLifetime(cert) {} }
        let x = cert.raw
        subjectCommonName = commonName(X509_get_subject_name(x))
        issuerCommonName = commonName(X509_get_issuer_name(x))
        subjectAltNames = readSubjectAltNames(x)
        guard let pub = X509_get0_pubkey(x) else { throw capture("read certificate public key") }
        switch EVP_PKEY_get_base_id(pub) {
        case EVP_PKEY_RSA: keyType = .rsa3072
        case EVP_PKEY_EC: keyType = .ecdsaP256
        default: keyType = nil
        }
        keyBits = Int(EVP_PKEY_get_bits(pub))
        serialHex = try cert.serialHex()
        let flags = X509_get_extension_flags(x)
        isCA = flags & UInt32(EXFLAG_CA) != 0
        let bcIndex = X509_get_ext_by_NID(x, NID_basic_constraints, -1)
        basicConstraintsCritical = bcIndex >= 0 && X509_EXTENSION_get_critical(X509_get_ext(x, bcIndex)) == 1
        let ku = X509_get_key_usage(x)
        var usage: Set<String> = []
        if ku != UInt32.max {
            if ku & UInt32(KU_DIGITAL_SIGNATURE) != 0 { usage.insert("digitalSignature") }
            if ku & UInt32(KU_KEY_ENCIPHERMENT) != 0 { usage.insert("keyEncipherment") }
            if ku & UInt32(KU_KEY_CERT_SIGN) != 0 { usage.insert("keyCertSign") }
            if ku & UInt32(KU_CRL_SIGN) != 0 { usage.insert("cRLSign") }
        }
        keyUsage = usage
        let xku = X509_get_extended_key_usage(x)
        var ext: Set<String> = []
        if xku != UInt32.max {
            if xku & UInt32(XKU_SSL_SERVER) != 0 { ext.insert("serverAuth") }
            if xku & UInt32(XKU_SSL_CLIENT) != 0 { ext.insert("clientAuth") }
        }
        extendedKeyUsage = ext
        hasSubjectKeyIdentifier = X509_get0_subject_key_id(x) != nil
        hasAuthorityKeyIdentifier = X509_get0_authority_key_id(x) != nil
        notBefore = try asn1Date(X509_get0_notBefore(x))
        notAfter = try asn1Date(X509_get0_notAfter(x))
    }

    /// Verifies `chainPEM` (leaf first, then intermediates) against `trustedCAPEM` with
    /// `X509_verify_cert` for the TLS-server purpose, and when given checks the host name or IP address
    /// against the subjectAltNames. Throws the verification error text on failure.
    public static func verify(chainPEM: String, trustedCAPEM: String, name: String? = nil) throws(TLSError) {
        clearErrors()
        let chain = try readAllCertificates(chainPEM)
        let roots = try readAllCertificates(trustedCAPEM)
        guard let leaf = chain.first else { throw TLSError(step: "verify certificate: no certificate", reasons: []) }
        guard let store = X509_STORE_new() else { throw capture("create X509 store") }
        defer { X509_STORE_free(store) }
        for r in roots { try check(X509_STORE_add_cert(store, r.raw), "add trusted CA") }
        guard let untrusted = seed_X509_stack_new() else { throw capture("create certificate stack") }
        defer { seed_X509_stack_free(untrusted) }
        for c in chain.dropFirst() { _ = seed_X509_stack_push(untrusted, c.raw) }
        guard let ctx = X509_STORE_CTX_new() else { throw capture("create verify context") }
        defer { X509_STORE_CTX_free(ctx) }
        try check(X509_STORE_CTX_init(ctx, store, leaf.raw, untrusted), "init verify context")
        let param = X509_STORE_CTX_get0_param(ctx)
        _ = X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER)
        if let name {
            var s = name
            if s.hasPrefix("[") && s.hasSuffix("]") { s = String(s.dropFirst().dropLast()) }
            if ipBytes(s) != nil {
                try check(X509_VERIFY_PARAM_set1_ip_asc(param, s), "set expected IP address")
            } else {
                try check(X509_VERIFY_PARAM_set1_host(param, s, 0), "set expected host name")
            }
        }
        // The untrusted stack borrows the chain's certificates without taking references.
        let rc = withExtendedLifetime(chain) { X509_verify_cert(ctx) }
        if rc != 1 {
            let code = X509_STORE_CTX_get_error(ctx)
            let text = String(cString: X509_verify_cert_error_string(Int(code)))
            var e = capture("verify certificate")
            e.reasons.insert(text, at: 0)
            throw e
        }
    }
}

// MARK: - Owning wrappers

/// An owned X509.
private final class Certificate {
    let raw: OpaquePointer
    init(takingOwnershipOf raw: OpaquePointer) { self.raw = raw }
    deinit { X509_free(raw) }

    static func new(step: String) throws(TLSError) -> Certificate {
        guard let x = X509_new() else { throw capture(step) }
        return Certificate(takingOwnershipOf: x)
    }

    convenience init(pem: String, step: String, path: String? = nil) throws(TLSError) {
        let bio = try MemoryBIO(text: pem, step: step)
        guard let x = PEM_read_bio_X509(bio.raw, nil, nil, nil) else { throw capture(step, path: path) }
        self.init(takingOwnershipOf: x)
    }

    /// Version 3, random 128-bit serial, notBefore one hour back (clock skew between the mirror and
    /// endpoints), notAfter `days` after notBefore.
    func setBasics(serialStep: String, validityDays: Int) throws(TLSError) {
        try check(X509_set_version(raw, 2), serialStep)
        var bytes = [UInt8](repeating: 0, count: 16)
        try check(RAND_bytes(&bytes, 16), "random serial")
        // A zero or leading-zero serial is legal but confusing; keep the top bit pattern non-zero.
        if bytes[0] == 0 { bytes[0] = 1 }
        guard let bn = BN_bin2bn(bytes, 16, nil) else { throw capture("random serial") }
        defer { BN_free(bn) }
        guard BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(raw)) != nil else { throw capture("set serial") }
        let skew = 3600
        guard X509_gmtime_adj(X509_getm_notBefore(raw), -skew) != nil,
            X509_gmtime_adj(X509_getm_notAfter(raw), validityDays * 86_400 - skew) != nil
        else { throw capture("set validity") }
    }

    func addExtension(nid: Int32, value: String, issuer: Certificate) throws(TLSError) {
        var ctx = X509V3_CTX()
        X509V3_set_ctx(&ctx, issuer.raw, raw, nil, nil, 0)
        guard let ext = X509V3_EXT_conf_nid(nil, &ctx, nid, value) else {
            throw capture("add extension \(String(cString: OBJ_nid2sn(nid)))")
        }
        defer { X509_EXTENSION_free(ext) }
        try check(X509_add_ext(raw, ext, -1), "add extension \(String(cString: OBJ_nid2sn(nid)))")
    }

    func addSubjectAltNames(_ names: [ParsedName]) throws(TLSError) {
        guard let list = seed_GENERAL_NAMES_new() else { throw capture("subjectAltName") }
        defer { seed_GENERAL_NAMES_free(list) }
        for n in names {
            guard let gn = GENERAL_NAME_new() else { throw capture("subjectAltName") }
            guard let value = ASN1_STRING_type_new(n.isIP ? V_ASN1_OCTET_STRING : V_ASN1_IA5STRING) else {
                GENERAL_NAME_free(gn)
                throw capture("subjectAltName")
            }
            let ok = n.bytes.withUnsafeBytes { ASN1_STRING_set(value, $0.baseAddress, Int32($0.count)) }
            GENERAL_NAME_set0_value(gn, n.isIP ? GEN_IPADD : GEN_DNS, UnsafeMutableRawPointer(value))
            guard ok == 1, seed_GENERAL_NAMES_push(list, gn) > 0 else {
                GENERAL_NAME_free(gn)
                throw capture("subjectAltName \(n.text)")
            }
        }
        try check(
            X509_add1_ext_i2d(raw, NID_subject_alt_name, UnsafeMutableRawPointer(list), 0, 0), "add subjectAltName")
    }

    func sign(with key: PrivateKey, step: String) throws(TLSError) {
        guard X509_sign(raw, key.raw, EVP_sha256()) > 0 else { throw capture(step) }
    }

    func pem() throws(TLSError) -> String {
        let bio = try MemoryBIO(step: "write certificate PEM")
        try check(PEM_write_bio_X509(bio.raw, raw), "write certificate PEM")
        return bio.text()
    }

    func serialHex() throws(TLSError) -> String {
        guard let bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(raw), nil) else { throw capture("read serial") }
        defer { BN_free(bn) }
        guard let hex = BN_bn2hex(bn) else { throw capture("read serial") }
        defer { CRYPTO_free(hex, #fileID, #line) }
        var s = String(cString: hex).lowercased()
        while s.hasPrefix("0") && s.count > 1 { s.removeFirst() }
        return s
    }
}

/// An owned EVP_PKEY.
private final class PrivateKey {
    let raw: OpaquePointer
    init(takingOwnershipOf raw: OpaquePointer) { self.raw = raw }
    deinit { EVP_PKEY_free(raw) }

    convenience init(pem: String, step: String, path: String? = nil) throws(TLSError) {
        let bio = try MemoryBIO(text: pem, step: step)
        guard let k = PEM_read_bio_PrivateKey(bio.raw, nil, nil, nil) else { throw capture(step, path: path) }
        self.init(takingOwnershipOf: k)
    }

    func pem() throws(TLSError) -> String {
        let bio = try MemoryBIO(step: "write key PEM")
        try check(PEM_write_bio_PrivateKey(bio.raw, raw, nil, nil, 0, nil, nil), "write key PEM")
        return bio.text()
    }
}

/// An owned memory BIO.
private final class MemoryBIO {
    let raw: OpaquePointer
    /// A read-only BIO over a copy of `text` that lives as long as the BIO.
    private let storage: UnsafeMutableBufferPointer<CChar>?

    init(step: String) throws(TLSError) {
        guard let b = BIO_new(BIO_s_mem()) else { throw capture(step) }
        raw = b
        storage = nil
    }

    init(text: String, step: String) throws(TLSError) {
        let utf8 = Array(text.utf8CString)
        let buf = UnsafeMutableBufferPointer<CChar>.allocate(capacity: utf8.count)
        _ = buf.initialize(from: utf8)
        guard let b = BIO_new_mem_buf(buf.baseAddress, Int32(utf8.count - 1)) else {
            buf.deallocate()
            throw capture(step)
        }
        raw = b
        storage = buf
    }

    deinit {
        BIO_free(raw)
        storage?.deallocate()
    }

    func text() -> String {
        var p: UnsafeMutablePointer<CChar>?
        let n = seed_BIO_get_mem_data(raw, &p)
        guard let p, n > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self)
    }
}

// MARK: - Helpers

private struct ParsedName {
    var text: String
    var isIP: Bool
    var bytes: [UInt8]
}

private func parseNames(_ names: [String]) throws(TLSError) -> [ParsedName] {
    var out: [ParsedName] = []
    var seen: Set<String> = []
    for raw in names {
        var s = raw
        if s.hasPrefix("[") && s.hasSuffix("]") { s = String(s.dropFirst().dropLast()) }
        if let ip = ipBytes(s) {
            let text = formatIP(ip)
            if seen.insert("ip:" + text).inserted { out.append(ParsedName(text: text, isIP: true, bytes: ip)) }
        } else if isValidDNSName(raw) {
            let lower = raw.lowercased()
            if seen.insert("dns:" + lower).inserted {
                out.append(ParsedName(text: lower, isIP: false, bytes: Array(lower.utf8)))
            }
        } else {
            throw TLSError(
                step: "certificate name \"\(raw)\" is neither a DNS name nor an IP address", reasons: [])
        }
    }
    guard !out.isEmpty else { throw TLSError(step: "a server certificate needs at least one name", reasons: []) }
    return out
}

/// The 4 or 16 network-order bytes of an IPv4/IPv6 literal, by `inet_pton`; nil when not an address.
private func ipBytes(_ s: String) -> [UInt8]? {
    var v4 = [UInt8](repeating: 0, count: 4)
    if inet_pton(AF_INET, s, &v4) == 1 { return v4 }
    var v6 = [UInt8](repeating: 0, count: 16)
    if inet_pton(AF_INET6, s, &v6) == 1 { return v6 }
    return nil
}

private func formatIP(_ bytes: [UInt8]) -> String {
    var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    let family = bytes.count == 4 ? AF_INET : AF_INET6
    guard inet_ntop(family, bytes, &buf, socklen_t(buf.count)) != nil else { return "" }
    return cText(buf)
}

/// RFC 1123 host name (letters, digits, hyphens; labels 1–63, total ≤ 253), optionally `*.` first.
private func isValidDNSName(_ name: String) -> Bool {
    var s = Substring(name)
    if s.hasSuffix(".") { s = s.dropLast() }
    if s.hasPrefix("*.") { s = s.dropFirst(2) }
    guard !s.isEmpty && s.utf8.count <= 253 else { return false }
    for label in s.split(separator: ".", omittingEmptySubsequences: false) {
        guard !label.isEmpty, label.utf8.count <= 63, !label.hasPrefix("-"), !label.hasSuffix("-") else { return false }
        for c in label.utf8 {
            let ok =
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D
                || c == 0x5F
            if !ok { return false }
        }
    }
    // All-numeric dotted text that inet_pton rejected (e.g. 999.1.1.1) is a typo, not a host name.
    return !s.allSatisfy { $0.isNumber || $0 == "." }
}

private func makeName(commonName: String, step: String) throws(TLSError) -> OpaquePointer {
    guard let name = X509_NAME_new() else { throw capture(step) }
    let cn = String(commonName.prefix(64))
    guard X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, "SeedMirror", -1, -1, 0) == 1,
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, cn, -1, -1, 0) == 1
    else {
        X509_NAME_free(name)
        throw capture(step)
    }
    return name
}

private func generateKey(_ type: CertificateKeyType) throws(TLSError) -> PrivateKey {
    let key: OpaquePointer?
    switch type {
    case .rsa3072: key = seed_EVP_RSA_gen(3072)
    case .ecdsaP256: key = seed_EVP_EC_gen("P-256")
    }
    guard let key else { throw capture("generate \(type.rawValue) key") }
    return PrivateKey(takingOwnershipOf: key)
}

private func commonName(_ name: OpaquePointer?) -> String {
    guard let name else { return "" }
    let i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)
    guard i >= 0, let entry = X509_NAME_get_entry(name, i), let data = X509_NAME_ENTRY_get_data(entry),
        let p = ASN1_STRING_get0_data(data)
    else { return "" }
    return String(decoding: UnsafeBufferPointer(start: p, count: Int(ASN1_STRING_length(data))), as: UTF8.self)
}

private func readSubjectAltNames(_ x: OpaquePointer) -> [SubjectAltName] {
    guard let raw = X509_get_ext_d2i(x, NID_subject_alt_name, nil, nil) else { return [] }
    let list = OpaquePointer(raw)
    defer { seed_GENERAL_NAMES_free(list) }
    var out: [SubjectAltName] = []
    for i in 0..<seed_GENERAL_NAMES_num(list) {
        guard let gn = seed_GENERAL_NAMES_value(list, i) else { continue }
        var type: Int32 = 0
        guard let value = GENERAL_NAME_get0_value(gn, &type) else { continue }
        let str = value.assumingMemoryBound(to: ASN1_STRING.self)
        guard let p = ASN1_STRING_get0_data(str) else { continue }
        let bytes = Array(UnsafeBufferPointer(start: p, count: Int(ASN1_STRING_length(str))))
        if type == GEN_DNS {
            out.append(.dns(String(decoding: bytes, as: UTF8.self)))
        } else if type == GEN_IPADD, bytes.count == 4 || bytes.count == 16 {
            out.append(.ip(formatIP(bytes)))
        }
    }
    return out
}

private func readAllCertificates(_ pem: String) throws(TLSError) -> [Certificate] {
    let bio = try MemoryBIO(text: pem, step: "read certificates")
    var out: [Certificate] = []
    while let x = PEM_read_bio_X509(bio.raw, nil, nil, nil) { out.append(Certificate(takingOwnershipOf: x)) }
    // Reading stops with a "no start line" error at the end of the text; that one is expected.
    clearErrors()
    guard !out.isEmpty else { throw TLSError(step: "read certificates: no PEM certificate found", reasons: []) }
    return out
}

private func asn1Date(_ t: UnsafePointer<ASN1_TIME>?) throws(TLSError) -> Date {
    var tm = Glibc.tm()
    guard let t, ASN1_TIME_to_tm(t, &tm) == 1 else { throw capture("read certificate validity") }
    return Date(timeIntervalSince1970: TimeInterval(timegm(&tm)))
}

private func readText(_ path: String) throws(TLSError) -> String {
    guard let d = FileManager.default.contents(atPath: path) else {
        throw TLSError(step: "read", reasons: ["cannot read the file"], path: path)
    }
    return String(decoding: d, as: UTF8.self)
}

private func ioError(_ step: String, path: String) -> TLSError {
    TLSError(step: step, reasons: [String(cString: strerror(errno))], path: path)
}

/// The NUL-terminated text in a C buffer.
private func cText(_ buf: [CChar]) -> String {
    let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

private func clearErrors() { ERR_clear_error() }

/// Drains this thread's OpenSSL error queue into a TLSError for `step`.
private func capture(_ step: String, path: String? = nil) -> TLSError { TLSError.capture(step, path: path) }

private func check(_ rc: Int32, _ step: String, path: String? = nil) throws(TLSError) {
    if rc != 1 { throw capture(step, path: path) }
}
