import Foundation
import Glibc
import SeedPosix

/// One file of the log, `audit-YYYYMMDD-NNN.jsonl`: the UTC day it was started and its index that day.
public struct AuditFileName: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var compactDate: String
    public var index: Int

    public init(compactDate: String, index: Int) {
        self.compactDate = compactDate
        self.index = index
    }

    public init?(parsing name: String) {
        guard name.hasPrefix("audit-"), name.hasSuffix(".jsonl") else { return nil }
        let mid = name.dropFirst(6).dropLast(6)
        let parts = mid.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 8, parts[0].allSatisfy(\.isASCII), parts[0].allSatisfy(\.isNumber),
            parts[1].count >= 3, parts[1].allSatisfy(\.isASCII), parts[1].allSatisfy(\.isNumber),
            let idx = Int(parts[1]), idx > 0
        else { return nil }
        compactDate = String(parts[0])
        index = idx
    }

    public var description: String {
        let n = String(index)
        return "audit-\(compactDate)-\(n.count >= 3 ? n : String(repeating: "0", count: 3 - n.count) + n).jsonl"
    }

    public static func < (a: AuditFileName, b: AuditFileName) -> Bool {
        (a.compactDate, a.index) < (b.compactDate, b.index)
    }
}

/// Lists and reads the log's files.
public enum AuditFiles {
    /// The log's files in chain order (date, then index). Other files in the directory are ignored.
    public static func list(directory: String) throws(AuditError) -> [AuditFileName] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            if !FileManager.default.fileExists(atPath: directory) { return [] }
            throw AuditError(.invalidArgument("cannot list the directory: \(error.localizedDescription)"), path: directory)
        }
        return names.compactMap(AuditFileName.init(parsing:)).sorted()
    }

    static func readAll(_ path: String) throws(AuditError) -> [UInt8] {
        let fd: CInt
        do {
            fd = try retryingEINTR("open", path: path) { open(path, O_RDONLY | O_CLOEXEC) }
        } catch { throw AuditError(.io(error), path: path) }
        defer { _ = close(fd) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw AuditError(.io(SystemError.current("read", path: path)), path: path)
            }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    /// Splits file bytes into lines (without `\n`); `torn` holds bytes after the last newline.
    static func lines(_ bytes: [UInt8]) -> (lines: [ArraySlice<UInt8>], torn: ArraySlice<UInt8>?) {
        var out: [ArraySlice<UInt8>] = []
        var start = 0
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x0A {
                out.append(bytes[start..<i])
                start = i + 1
            }
            i += 1
        }
        return (out, start < bytes.count ? bytes[start...] : nil)
    }

    /// Every record with `seq > since`, as exact lines in chain order, up to `limit`. Unparsable lines
    /// are skipped (verify reports them).
    public static func lines(directory: String, since: UInt64, limit: Int) throws(AuditError) -> [(AuditRecord, String)] {
        let files = try list(directory: directory)
        // Skip whole files whose successor starts at or below `since`.
        var firstSeqs: [UInt64?] = []
        for f in files { firstSeqs.append(try firstSeq(directory + "/" + f.description)) }
        var startIndex = 0
        for (i, s) in firstSeqs.enumerated() { if let s, s <= since + 1 { startIndex = i } }
        var out: [(AuditRecord, String)] = []
        for f in files.dropFirst(startIndex) {
            let bytes = try readAll(directory + "/" + f.description)
            for l in lines(bytes).lines {
                guard case .success(let r) = AuditRecord.parse(l), r.seq > since else { continue }
                out.append((r, String(decoding: l, as: UTF8.self)))
                if out.count >= limit { return out }
            }
        }
        return out
    }

    /// All parseable records of the log, in chain order (for reports and the dashboard).
    public static func records(directory: String) throws(AuditError) -> [AuditRecord] {
        try lines(directory: directory, since: 0, limit: Int.max).map(\.0)
    }

    static func firstSeq(_ path: String) throws(AuditError) -> UInt64? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AuditError(.io(SystemError.current("open", path: path)), path: path) }
        defer { _ = close(fd) }
        var buf = [UInt8](repeating: 0, count: 8192)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0, let nl = buf[0..<n].firstIndex(of: 0x0A) else { return nil }
        guard case .success(let r) = AuditRecord.parse(buf[0..<nl]) else { return nil }
        return r.seq
    }
}
