import Foundation
public import SeedTLS

/// A test CA and two server certificates (RSA-3072 and ECDSA P-256) minted with SeedTLS's CertificateAuthority,
/// carrying SANs localhost, 127.0.0.1 and ::1.
public struct TransportTestCertificates: Sendable {
    public var caFile: String
    public var rsa: CertificateKeyPair
    public var ecdsa: CertificateKeyPair
    /// Upper-case hex serials of the two server certificates (RSA, ECDSA).
    public var serials: Set<String>

    public var serverConfiguration: TLSServerConfiguration {
        TLSServerConfiguration(certificates: [rsa, ecdsa])
    }

    /// Mints a fresh CA and server pair into `directory`.
    public static func make(in directory: String) throws -> TransportTestCertificates {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let names = ["localhost", "127.0.0.1", "::1"]
        let ca = try CertificateAuthority.createCA(commonName: "Seed Transport Test CA", validityDays: 2)
        let rsa = try CertificateAuthority.issueServerCertificate(ca: ca, names: names, keyType: .rsa3072, validityDays: 2)
        let ec = try CertificateAuthority.issueServerCertificate(ca: ca, names: names, keyType: .ecdsaP256, validityDays: 2)
        try CertificateAuthority.writeFileAtomically(directory + "/ca.pem", ca.certificatePEM, mode: 0o644)
        for (name, issued) in [("rsa", rsa), ("ec", ec)] {
            try CertificateAuthority.writeFileAtomically(directory + "/\(name).pem", issued.chainPEM, mode: 0o644)
            try CertificateAuthority.writeFileAtomically(directory + "/\(name).key", issued.privateKeyPEM, mode: 0o600)
        }
        return TransportTestCertificates(
            caFile: directory + "/ca.pem",
            rsa: CertificateKeyPair(certificateChainPath: directory + "/rsa.pem", privateKeyPath: directory + "/rsa.key"),
            ecdsa: CertificateKeyPair(certificateChainPath: directory + "/ec.pem", privateKeyPath: directory + "/ec.key"),
            serials: [normalizedSerial(rsa.serialHex), normalizedSerial(ec.serialHex)])
    }

    /// Upper-case hex without leading zeros or separators, as `TLSEngine.peerCertificateSerial` reports it.
    public static func normalizedSerial(_ hex: String) -> String {
        let digits = hex.uppercased().filter { $0.isHexDigit }
        let trimmed = digits.drop { $0 == "0" }
        return trimmed.isEmpty ? "0" : String(trimmed)
    }
}
