import Foundation
import SeedTLS
import SeedTestSupport
import Testing

@Suite struct CertificateAuthorityTests {
    // RSA-3072 generation costs up to a second or two on a loaded machine; mint once per suite.
    static let ca: IssuedCertificate = try! CertificateAuthority.createCA(commonName: "Test CA")
    static let names = ["mirror.internal", "localhost", "127.0.0.1", "::1", "[fe80::1]"]
    static let rsa = try! CertificateAuthority.issueServerCertificate(ca: ca, names: names, keyType: .rsa3072)
    static let ecdsa = try! CertificateAuthority.issueServerCertificate(ca: ca, names: names, keyType: .ecdsaP256)

    @Test func caIsASelfSignedP256CA() throws {
        let d = try CertificateDetails(pem: Self.ca.certificatePEM)
        #expect(d.isCA)
        #expect(d.basicConstraintsCritical)
        #expect(d.keyType == .ecdsaP256 && d.keyBits == 256)
        #expect(d.keyUsage == ["keyCertSign", "cRLSign"])
        #expect(d.hasSubjectKeyIdentifier)
        #expect(d.subjectCommonName == "Test CA" && d.issuerCommonName == "Test CA")
        let days = d.notAfter.timeIntervalSince(d.notBefore) / 86_400
        #expect(days > 3600 && days <= 3650)
        // The CA itself is not a TLS server certificate (no serverAuth).
        #expect(throws: TLSError.self) {
            try CertificateDetails.verify(chainPEM: Self.ca.certificatePEM, trustedCAPEM: Self.ca.certificatePEM)
        }
    }

    @Test(arguments: [CertificateKeyType.rsa3072, .ecdsaP256])
    func serverCertificateHasNamesUsagesAndVerifies(type: CertificateKeyType) throws {
        let cert = type == .rsa3072 ? Self.rsa : Self.ecdsa
        let d = try CertificateDetails(pem: cert.certificatePEM)
        #expect(!d.isCA)
        #expect(d.keyType == type)
        #expect(d.keyBits == (type == .rsa3072 ? 3072 : 256))
        #expect(
            d.subjectAltNames == [
                .dns("mirror.internal"), .dns("localhost"), .ip("127.0.0.1"), .ip("::1"), .ip("fe80::1"),
            ])
        #expect(d.subjectCommonName == "mirror.internal" && d.issuerCommonName == "Test CA")
        #expect(d.extendedKeyUsage == ["serverAuth"])
        #expect(d.keyUsage == (type == .rsa3072 ? ["digitalSignature", "keyEncipherment"] : ["digitalSignature"]))
        #expect(d.hasAuthorityKeyIdentifier && d.hasSubjectKeyIdentifier)
        #expect(d.notAfter.timeIntervalSince(d.notBefore) <= 397 * 86_400)
        #expect(d.notBefore < Date() && d.notAfter > Date().addingTimeInterval(300 * 86_400))
        #expect(d.serialHex.count >= 30 && d.serialHex.count <= 32)
        #expect(cert.serialHex == d.serialHex)
        // The chain file is leaf + CA.
        #expect(cert.chainPEM == cert.certificatePEM + Self.ca.certificatePEM)

        for name in ["mirror.internal", "localhost", "127.0.0.1", "::1", "[::1]", "fe80::1"] {
            try CertificateDetails.verify(chainPEM: cert.chainPEM, trustedCAPEM: Self.ca.certificatePEM, name: name)
        }
        #expect(throws: TLSError.self) {
            try CertificateDetails.verify(
                chainPEM: cert.chainPEM, trustedCAPEM: Self.ca.certificatePEM, name: "other.internal")
        }
        #expect(throws: TLSError.self) {
            try CertificateDetails.verify(
                chainPEM: cert.chainPEM, trustedCAPEM: Self.ca.certificatePEM, name: "10.0.0.1")
        }
    }

    @Test func anotherCADoesNotVerifyTheChain() throws {
        let other = try CertificateAuthority.createCA(commonName: "Other CA")
        let error = #expect(throws: TLSError.self) {
            try CertificateDetails.verify(chainPEM: Self.ecdsa.certificatePEM, trustedCAPEM: other.certificatePEM)
        }
        #expect(error?.description.contains("verify certificate") == true)
    }

    @Test func serialsAreUnique() throws {
        var serials: Set<String> = [Self.ca.serialHex, Self.rsa.serialHex, Self.ecdsa.serialHex]
        for _ in 0..<20 {
            let c = try CertificateAuthority.issueServerCertificate(ca: Self.ca, names: ["a.test"], keyType: .ecdsaP256)
            serials.insert(c.serialHex)
        }
        #expect(serials.count == 23)
    }

    @Test func badNamesAndValidityAreRefused() {
        for bad in ["", "under score!", "a..b", "-lead.test", "999.1.1.1", "x y"] {
            #expect(throws: TLSError.self) {
                try CertificateAuthority.issueServerCertificate(ca: Self.ca, names: [bad], keyType: .ecdsaP256)
            }
        }
        #expect(throws: TLSError.self) {
            try CertificateAuthority.issueServerCertificate(ca: Self.ca, names: [], keyType: .ecdsaP256)
        }
        #expect(throws: TLSError.self) {
            try CertificateAuthority.issueServerCertificate(
                ca: Self.ca, names: ["a.test"], keyType: .ecdsaP256, validityDays: 398)
        }
    }

    @Test func classifiesNames() {
        #expect(CertificateAuthority.classify(name: "10.1.2.3") == .ip("10.1.2.3"))
        #expect(CertificateAuthority.classify(name: "[2001:db8::1]") == .ip("2001:db8::1"))
        #expect(CertificateAuthority.classify(name: "2001:0db8:0:0::1") == .ip("2001:db8::1"))
        #expect(CertificateAuthority.classify(name: "Mirror.Corp.Example") == .dns("mirror.corp.example"))
        #expect(CertificateAuthority.classify(name: "*.corp.example") == .dns("*.corp.example"))
        #expect(CertificateAuthority.classify(name: "bad name") == nil)
    }

    @Test func writesAPKIDirectoryWithPrivateKeys() async throws {
        try await withTemporaryDirectory { dir in
            let certs = dir + "/certs"
            let pki = try CertificateAuthority.writeDevelopmentPKI(to: certs, names: ["localhost", "127.0.0.1", "::1"])
            #expect(!pki.reusedCA)
            let fm = FileManager.default
            for file in ["ca.key", "server-rsa.key", "server-ecdsa.key"] {
                let attrs = try fm.attributesOfItem(atPath: certs + "/" + file)
                #expect((attrs[.posixPermissions] as? Int) == 0o600, "\(file)")
            }
            for file in ["ca.pem", "server-rsa.pem", "server-ecdsa.pem"] {
                let attrs = try fm.attributesOfItem(atPath: certs + "/" + file)
                #expect((attrs[.posixPermissions] as? Int) == 0o644, "\(file)")
            }
            // No temporary files are left behind.
            #expect(
                try fm.contentsOfDirectory(atPath: certs).sorted() == [
                    "ca.key", "ca.pem", "server-ecdsa.key", "server-ecdsa.pem", "server-rsa.key", "server-rsa.pem",
                ])
            let caPEM = try String(contentsOfFile: pki.caCertificatePath, encoding: .utf8)
            for pair in pki.serverPairs {
                let chain = try String(contentsOfFile: pair.certificateChainPath, encoding: .utf8)
                try CertificateDetails.verify(chainPEM: chain, trustedCAPEM: caPEM, name: "::1")
            }
            #expect(
                try CertificateDetails(pem: String(contentsOfFile: pki.rsa.certificateChainPath, encoding: .utf8))
                    .keyType == .rsa3072)

            // Reissuing keeps the CA, so endpoints that already trust it keep working.
            let again = try CertificateAuthority.writeDevelopmentPKI(
                to: certs, names: ["other.test"], reuseExistingCA: true)
            #expect(again.reusedCA)
            #expect(try String(contentsOfFile: pki.caCertificatePath, encoding: .utf8) == caPEM)
            let leaf = try String(contentsOfFile: again.ecdsa.certificateChainPath, encoding: .utf8)
            try CertificateDetails.verify(chainPEM: leaf, trustedCAPEM: caPEM, name: "other.test")
        }
    }

    @Test func loadCARejectsMismatchedKey() async throws {
        try await withTemporaryDirectory { dir in
            let other = try CertificateAuthority.createCA(commonName: "Other")
            try CertificateAuthority.writeFileAtomically(dir + "/ca.pem", Self.ca.certificatePEM, mode: 0o644)
            try CertificateAuthority.writeFileAtomically(dir + "/ca.key", other.privateKeyPEM, mode: 0o600)
            let error = #expect(throws: TLSError.self) {
                try CertificateAuthority.loadCA(certificatePath: dir + "/ca.pem", keyPath: dir + "/ca.key")
            }
            #expect(error?.description.contains("do not match") == true)
            #expect(throws: TLSError.self) {
                try CertificateAuthority.loadCA(certificatePath: dir + "/missing.pem", keyPath: dir + "/ca.key")
            }
        }
    }
}
