import Foundation
import SeedAudit
import SeedLedger
import SeedLicensing

/// The ledger's licenses for the admin API (`GET /api/mirror/licenses`). Reads run on a thread of their
/// own (SQLite blocks).
struct LedgerLicenseListing: LicenseListing {
    let ledger: Ledger

    func licenses() async throws -> [LicenseSummary] {
        let ledger = self.ledger
        let records = try await onBlockingThread(throwing: { try ledger.licenses(hostKey: nil) })
        let now = Date()
        return records.map { r in
            let state = r.revokedAt != nil ? "revoked" : (r.expiresAt <= now ? "expired" : "active")
            return LicenseSummary(
                hostKey: r.key.hostKey, type: r.key.type.rawValue, account: r.key.account, licenseRef: r.reference,
                portalHmac: r.portalHMAC, state: state, issuedAt: auditTime(r.issuedAt), expiresAt: auditTime(r.expiresAt))
        }
    }

    private func auditTime(_ d: Date) -> AuditTime {
        AuditTime(millisecondsSinceEpoch: Int64((d.timeIntervalSince1970 * 1000).rounded()))
    }
}
