import Foundation
public import SeedTLS

/// A test CA and two server certificates (RSA-3072 and ECDSA P-256) minted with the `openssl` command line,
/// carrying SANs localhost, 127.0.0.1 and ::1. Test-only until SeedTLS's CertificateAuthority lands.
public struct TransportTestCertificates: Sendable {
    public var caFile: String
    public var rsa: CertificateKeyPair
    public var ecdsa: CertificateKeyPair
    /// Upper-case hex serial both server certificates carry.
    public var serial: String

    public var serverConfiguration: TLSServerConfiguration {
        TLSServerConfiguration(certificates: [rsa, ecdsa])
    }

    /// Mints into `directory`; a second call with another `serial` in another directory reuses nothing.
    public static func make(in directory: String, serial: UInt32 = 0x1001) throws -> TransportTestCertificates {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func run(_ args: [String]) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            p.arguments = args
            p.currentDirectoryURL = URL(fileURLWithPath: directory)
            p.standardOutput = FileHandle.nullDevice
            let err = Pipe()
            p.standardError = err
            try p.run()
            let data = err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else {
                throw TestClientError("openssl \(args.joined(separator: " ")): \(String(decoding: data, as: UTF8.self))")
            }
        }
        let ext = "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\n"
            + "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        try ext.write(toFile: directory + "/server.ext", atomically: true, encoding: .utf8)
        try run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"])
        try run([
            "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=Seed Test CA", "-days", "2", "-out", "ca.pem",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
        try run(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-out", "rsa.key"])
        try run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ec.key.sec1"])
        try run(["pkcs8", "-topk8", "-nocrypt", "-in", "ec.key.sec1", "-out", "ec.key"])
        for name in ["rsa", "ec"] {
            try run(["req", "-new", "-key", "\(name).key", "-subj", "/CN=localhost", "-out", "\(name).csr"])
            try run([
                "x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial",
                "\(serial)", "-days", "2", "-extfile", "server.ext", "-out", "\(name).pem",
            ])
        }
        return TransportTestCertificates(
            caFile: directory + "/ca.pem",
            rsa: CertificateKeyPair(certificateChainPath: directory + "/rsa.pem", privateKeyPath: directory + "/rsa.key"),
            ecdsa: CertificateKeyPair(certificateChainPath: directory + "/ec.pem", privateKeyPath: directory + "/ec.key"),
            serial: String(serial, radix: 16, uppercase: true))
    }
}
