import Foundation
import SeedHTTPServer
import SeedTLS
import Testing

@Test(.enabled(if: ProcessInfo.processInfo.environment["SEED_BENCH"] != nil)) func benchScratch() async throws {
    let file = TransportFixtures.file(megabytes: 200)
    print("CA", TransportFixtures.certificates.caFile, "RSA", TransportFixtures.certificates.rsa.certificateChainPath)
    try await withTransportServer(files: ["/big": file.path], configure: {
        $0.listeners = [ListenAddress(host: "127.0.0.1", port: 18443)]
        $0.eventLoops = 1
    }) { s in
        print("READY", getpid())
        try await Task.sleep(for: .seconds(Double(ProcessInfo.processInfo.environment["SEED_BENCH"]!)!))
    }
}
