import Foundation
import SeedServer
import SeedTLS
import SeedTestSupport
import Testing

private func read(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

private func mode(_ path: String) throws -> Int {
    try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int ?? -1
}

@Suite struct InitCommandTests {
    @Test func initWritesALoadableMirrorFolder() async throws {
        try await withTemporaryDirectory { root in
            let dir = root + "/mirror"
            let status = await SeedMirrorCLI.main([
                "init", "--dir", dir, "--name", "mirror.test", "--name", "10.0.0.5", "--name", "::1",
            ])
            #expect(status == 0)
            let fm = FileManager.default
            #expect(fm.fileExists(atPath: dir + "/cache"))
            for key in [
                "config/client.token", "config/admin.token", "certs/ca.key", "certs/server-rsa.key",
                "certs/server-ecdsa.key",
            ] {
                #expect(try mode(dir + "/" + key) == 0o600, "\(key)")
            }
            let clientToken = try read(dir + "/config/client.token").trimmingCharacters(in: .whitespacesAndNewlines)
            let adminToken = try read(dir + "/config/admin.token").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(clientToken.count == 64 && adminToken.count == 64 && clientToken != adminToken)

            // Load from another working directory: every path lands inside the mirror folder.
            let config = try MirrorConfig.load(path: dir + "/config/seed-mirror.json", workingDirectory: "/")
            #expect(config.baseDir == dir && config.paths.cacheDir == dir + "/cache")
            #expect(config.clients.client(forToken: clientToken)?.name == "seeds")
            #expect(config.admin.token?.value == adminToken)
            #expect(config.warnings.isEmpty)
            #expect(config.upstream.mode == .offline)
            let pairs = config.tlsServerConfiguration.certificates
            #expect(
                pairs.map(\.certificateChainPath) == [dir + "/certs/server-rsa.pem", dir + "/certs/server-ecdsa.pem"])
            let ca = try read(dir + "/certs/ca.pem")
            for pair in pairs {
                #expect(fm.fileExists(atPath: pair.privateKeyPath))
                let chain = try read(pair.certificateChainPath)
                let details = try CertificateDetails(pem: chain)
                #expect(details.subjectAltNames == [.dns("mirror.test"), .ip("10.0.0.5"), .ip("::1")])
                for name in ["mirror.test", "10.0.0.5", "::1"] {
                    try CertificateDetails.verify(chainPEM: chain, trustedCAPEM: ca, name: name)
                }
            }
        }
    }

    @Test func initRefusesToOverwriteWithoutForceAndKeepsCAAndTokensWithIt() async throws {
        try await withTemporaryDirectory { dir in
            let configPath = dir + "/config/seed-mirror.json"
            #expect(await SeedMirrorCLI.main(["init", "--dir", dir, "--name", "a.test"]) == 0)
            let ca = try read(dir + "/certs/ca.pem")
            let token = try read(dir + "/config/client.token")
            let rsa = try read(dir + "/certs/server-rsa.pem")
            // An operator edit that a second init must not destroy.
            let edited = try read(configPath).replacingOccurrences(of: "\"info\"", with: "\"debug\"")
            try Data(edited.utf8).write(to: URL(fileURLWithPath: configPath))

            #expect(await SeedMirrorCLI.main(["init", "--dir", dir, "--name", "b.test"]) == 1)
            #expect(try read(configPath) == edited)
            #expect(try read(dir + "/certs/server-rsa.pem") == rsa)

            #expect(await SeedMirrorCLI.main(["init", "--dir", dir, "--name", "b.test", "--force"]) == 0)
            #expect(try read(configPath) == InitCommand.defaultConfigText())
            #expect(try read(dir + "/certs/ca.pem") == ca)
            #expect(try read(dir + "/config/client.token") == token)
            let newRSA = try read(dir + "/certs/server-rsa.pem")
            #expect(newRSA != rsa)
            #expect(try CertificateDetails(pem: newRSA).subjectAltNames == [.dns("b.test")])
            try CertificateDetails.verify(chainPEM: newRSA, trustedCAPEM: ca, name: "b.test")
        }
    }

    @Test func badArgumentsWriteNothing() async {
        await withTemporaryDirectory { dir in
            #expect(await SeedMirrorCLI.main(["init", "--dir", dir + "/m", "--name", "not a name"]) == 1)
            #expect(!FileManager.default.fileExists(atPath: dir + "/m"))
            #expect(await SeedMirrorCLI.main(["init", "--dir", dir + "/m", "--bogus"]) == 1)
            #expect(!FileManager.default.fileExists(atPath: dir + "/m"))
            #expect(await SeedMirrorCLI.main(["init", "--dir"]) == 1)
        }
    }

    @Test func instructionsSayHowToTrustPointAndServe() async throws {
        try await withTemporaryDirectory { dir in
            let r = try InitCommand.run(dir: dir, names: ["mirror.test"], force: false)
            let text = InitCommand.instructions(r)
            #expect(text.contains("certutil -addstore -f Root ca.pem"))
            #expect(text.contains("-AsgardServer") && text.contains("8443"))
            #expect(text.contains("cloud.nextron-systems.com"))
            #expect(text.contains("seed-mirror serve --config \(dir)/config/seed-mirror.json"))
            // The tokens' paths are shown, never their values.
            let token = try read(dir + "/config/client.token").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(!text.contains(token))
            #expect(await SeedMirrorCLI.main(["init", "--help"]) == 0)
        }
    }

    @Test func defaultNamesCoverLoopback() {
        let names = InitCommand.defaultNames()
        #expect(Array(names.prefix(3)) == ["localhost", "127.0.0.1", "::1"])
        #expect(names.allSatisfy { CertificateAuthority.classify(name: $0) != nil })
    }

    @Test func repositoryDefaultConfigIsWhatInitWritesAndLoads() async throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let text = try read(repo + "/config/seed-mirror.json")
        #expect(text == InitCommand.defaultConfigText())
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: dir + "/config", withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/config/seed-mirror.json"))
            for t in ["client", "admin"] {
                try Data("token-\(t)-0123456789abcdef".utf8).write(to: URL(fileURLWithPath: dir + "/config/\(t).token"))
            }
            let c = try MirrorConfig.load(path: dir + "/config/seed-mirror.json")
            let defaults = try MirrorConfig.parse(Data("{}".utf8), source: "-", baseDir: dir)
            // Every value spelled out in the file is the built-in default.
            #expect(c.listen == defaults.listen && c.paths == defaults.paths && c.tls == defaults.tls)
            #expect(c.server == defaults.server && c.log == defaults.log && c.upstream == defaults.upstream)
        }
    }
}
