import Foundation
import SeedLedger
import SeedLicensing
import SeedServer
import SeedTestSupport
import Testing

@Suite struct LicensesCommandTests {
    @Test func importServePendingExportAndLockedWrites() async throws {
        try await withTemporaryDirectory { dir in
            let pool = dir + "/pool"
            try FileManager.default.createDirectory(atPath: pool + "/sub", withIntermediateDirectories: true)
            try Data(repeating: 1, count: 900).write(to: URL(fileURLWithPath: pool + "/WS01.lic"))
            try Data(repeating: 2, count: 900).write(to: URL(fileURLWithPath: pool + "/sub/ws02.corp.lic"))
            let ledgerPath = dir + "/ledger.sqlite"
            let rc = await SeedMirrorCLI.main([
                "licenses", "--ledger", ledgerPath, "import", pool, "--type", "workstation",
            ])
            #expect(rc == 0)
            // The operator action is in the audit log beside the ledger.
            let auditFiles = try FileManager.default.contentsOfDirectory(atPath: dir + "/audit").filter {
                $0.hasSuffix(".jsonl")
            }
            #expect(auditFiles.count == 1)
            let records = try String(contentsOfFile: dir + "/audit/" + auditFiles[0], encoding: .utf8)
            #expect(records.contains("\"event\":\"import\""))

            var config = Fixture.baseConfig
            config.offline = true
            // The command stamps the pool with the wall clock; the desk must see the same era.
            let f = try Fixture(dir: dir, config: config, clock: ManualClock(Date()))
            #expect(
                await f.desk.decide(request("ws02"), issuer: OfflineIssuer()).bytes == [UInt8](repeating: 2, count: 900)
            )
            #expect(await f.desk.decide(request("WS77.corp"), issuer: OfflineIssuer()).status == 409)
            #expect(await f.desk.decide(request("ws55"), issuer: OfflineIssuer()).status == 409)

            // Read-only subcommands work beside the running desk.
            let export = dir + "/hostnames.txt"
            #expect(await SeedMirrorCLI.main(["licenses", "--ledger", ledgerPath, "pending", "--export", export]) == 0)
            #expect(try String(contentsOfFile: export, encoding: .utf8) == "ws55\nws77\n")
            #expect(await SeedMirrorCLI.main(["licenses", "--ledger", ledgerPath, "list"]) == 0)
            // Writes need the owner's lock.
            #expect(await SeedMirrorCLI.main(["licenses", "--ledger", ledgerPath, "revoke", "ws02"]) == 1)
            #expect(try f.ledger.licenses(hostKey: "ws02").allSatisfy { $0.revokedAt == nil })
        }
    }

    @Test func importsAZipOfLicenses() async throws {
        try await withTemporaryDirectory { dir in
            // A ZIP as the license-only API returns it, made by Python's zipfile (deflated members).
            let script = """
                import zipfile, sys
                with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
                    z.writestr("WS01.lic", bytes([1]) * 900)
                    z.writestr("licenses/srv-db.lic", bytes([2]) * 1000)
                    z.writestr("README.txt", "not a license")
                """
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", "-c", script, dir + "/licenses.zip"]
            try p.run()
            p.waitUntilExit()
            try #require(p.terminationStatus == 0)
            let ledgerPath = dir + "/ledger.sqlite"
            let rc = await SeedMirrorCLI.main([
                "licenses", "--ledger", ledgerPath, "import", dir + "/licenses.zip", "--type", "server",
            ])
            #expect(rc == 0)
            let ledger = try Ledger.open(path: ledgerPath, readOnly: true)
            #expect(try ledger.poolLicenses().map(\.hostKey) == ["srv-db", "ws01"])
            #expect(
                try ledger.poolLicense(hostKey: "srv-db", type: .server)?.bytes == [UInt8](repeating: 2, count: 1000))
        }
    }

    @Test func badArgumentsFail() async {
        #expect(await SeedMirrorCLI.main(["licenses", "--ledger", "/nonexistent/l.sqlite", "list"]) == 1)
        #expect(await SeedMirrorCLI.main(["licenses", "frobnicate"]) == 1)
        #expect(await SeedMirrorCLI.main(["licenses", "import", "/nonexistent/x.zip"]) == 1)
        #expect(await SeedMirrorCLI.main(["licenses", "resolve", "abc"]) == 1)
    }
}
