/// The first thing wrong with a log, naming the record (docs/audit.md §Verify).
public struct AuditProblem: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The line's bytes changed after it was written (or it is not a record at all).
        case edited
        /// Records `missing` are not in the log before this line.
        case deleted(missing: ClosedRange<UInt64>)
        /// This line's record belongs elsewhere in the order.
        case reordered
        /// The head says the log goes on to `headSeq`; the files end before it.
        case truncatedTail(headSeq: UInt64)
        /// The last line of a file is incomplete and not covered by the head.
        case tornLine
    }
    public var kind: Kind
    public var file: String
    /// 1-based line number within `file` (0 when the log has no lines at all).
    public var line: Int
    public var seq: UInt64?
    /// What exactly is wrong, in words.
    public var detail: String

    public var description: String {
        let at = line > 0 ? "\(file) line \(line)" + (seq.map { " (seq \($0))" } ?? "") : file
        switch kind {
        case .edited: return "record edited at \(at): \(detail)"
        case .deleted(let m):
            let what = m.count == 1 ? "record seq \(m.lowerBound) is" : "records seq \(m.lowerBound)-\(m.upperBound) are"
            return "deleted line: \(what) missing before \(at): \(detail)"
        case .reordered: return "records reordered at \(at): \(detail)"
        case .truncatedTail(let h): return "truncated tail: the head says seq \(h) but the log ends at \(at): \(detail)"
        case .tornLine: return "incomplete final line at \(at): \(detail)"
        }
    }
}

/// What `verify` found.
public struct AuditVerification: Sendable {
    public var records = 0
    public var files: [String] = []
    public var firstSeq: UInt64?
    public var lastSeq: UInt64?
    /// The first problem, or nil when the chain is intact and matches the head.
    public var problem: AuditProblem?
    /// Things an auditor should know that do not break the chain: acknowledged gaps, a head behind the files.
    public var warnings: [String] = []
    public var isIntact: Bool { problem == nil }

    /// One line: "audit log intact: N records" or the problem.
    public var summary: String {
        if let problem { return "audit log BROKEN: \(problem)" }
        return "audit log intact: \(records) records" + (warnings.isEmpty ? "" : " (\(warnings.count) warning(s))")
    }
}

/// Walks the chain across files and compares its end with the head.
public enum AuditVerifier {
    private struct Line {
        var file: String
        var number: Int
        var bytes: ArraySlice<UInt8>
        var isLastOfLog: Bool
    }

    /// Verifies the log in `directory`. `fromFile` starts at that file (earlier ones archived): its
    /// first record's `prev` is then taken on trust. `head` nil skips the tail check (with a warning).
    public static func verify(directory: String, fromFile: String? = nil, head: AuditHead?) throws(AuditError)
        -> AuditVerification
    {
        var result = AuditVerification()
        var names = try AuditFiles.list(directory: directory)
        if let fromFile {
            let base = fromFile.split(separator: "/").last.map(String.init) ?? fromFile
            guard let start = names.firstIndex(where: { $0.description == base }) else {
                throw AuditError(.invalidArgument("--from \(fromFile) is not an audit file in this directory"), path: directory)
            }
            names = Array(names[start...])
        }
        result.files = names.map(\.description)

        // Gather the lines file by file; the log is read once, whole files at a time.
        var lines: [Line] = []
        for (fi, n) in names.enumerated() {
            let bytes = try AuditFiles.readAll(directory + "/" + n.description)
            let split = AuditFiles.lines(bytes)
            for (i, l) in split.lines.enumerated() {
                lines.append(Line(file: n.description, number: i + 1, bytes: l, isLastOfLog: false))
            }
            if let torn = split.torn {
                if fi == names.count - 1 {
                    result.warnings.append(
                        "\(n.description) ends in an incomplete line of \(torn.count) bytes (a crash during a write; "
                            + "the writer moves it aside at its next start)")
                } else {
                    result.problem = AuditProblem(
                        kind: .tornLine, file: n.description, line: split.lines.count + 1, seq: nil,
                        detail: "\(torn.count) bytes without a line end in a file that is not the last")
                    return result
                }
            }
        }
        if !lines.isEmpty { lines[lines.count - 1].isLastOfLog = true }

        var parsed: [AuditRecord?] = []
        parsed.reserveCapacity(lines.count)
        for l in lines {
            if case .success(let r) = AuditRecord.parse(l.bytes) { parsed.append(r) } else { parsed.append(nil) }
        }
        var hashes: [String] = lines.map { sha256Hex($0.bytes) }

        var expectedSeq: UInt64? = fromFile == nil ? 1 : nil
        var prevHash: String? = fromFile == nil ? auditGenesisHash : nil
        var headSeen = false

        func problem(_ kind: AuditProblem.Kind, _ i: Int, _ detail: String) -> AuditVerification {
            var r = result
            r.problem = AuditProblem(kind: kind, file: lines[i].file, line: lines[i].number, seq: parsed[i]?.seq, detail: detail)
            return r
        }
        func nextPrevMatches(_ i: Int) -> Bool? {
            if i + 1 < lines.count { return parsed[i + 1]?.prev == hashes[i] }
            if let head, head.seq == parsed[i]?.seq { return head.hash == hashes[i] }
            return nil
        }

        for i in 0..<lines.count {
            guard let r = parsed[i] else {
                if case .failure(let e) = AuditRecord.parse(lines[i].bytes) {
                    return problem(.edited, i, "the line is not a record (\(e.reason))")
                }
                return problem(.edited, i, "the line is not a record")
            }
            let exp = expectedSeq ?? r.seq
            let prevOK = prevHash == nil || r.prev == prevHash
            if r.seq < exp {
                if prevOK && nextPrevMatches(i) == false {
                    return problem(.edited, i, "seq is \(r.seq) where \(exp) was expected, and the line no longer hashes to the next record's prev")
                }
                let earlier = (0..<i).last { parsed[$0]?.seq == r.seq }
                let detail = earlier.map { "seq \(r.seq) appears after seq \(exp - 1); \(lines[$0].file) line \(lines[$0].number) has the same seq" }
                    ?? "seq \(r.seq) appears after seq \(exp - 1)"
                return problem(.reordered, i, detail)
            }
            if r.seq > exp {
                if prevOK {
                    if r.event == AuditRecord.gapEvent {
                        result.warnings.append(
                            "acknowledged gap at \(lines[i].file) line \(lines[i].number): records \(exp)-\(r.seq - 1) were lost before a restart (\(r.reason ?? "no reason given"))")
                    } else if nextPrevMatches(i) == false {
                        return problem(.edited, i, "seq is \(r.seq) where \(exp) was expected, and the line no longer hashes to the next record's prev")
                    } else {
                        return problem(.deleted(missing: exp...(r.seq - 1)), i, "the chain links here but the seq jumps from \(exp - 1) to \(r.seq)")
                    }
                } else if let later = ((i + 1)..<lines.count).first(where: { parsed[$0]?.seq == exp }) {
                    return problem(.reordered, i,
                        "seq \(r.seq) appears before seq \(exp), which is at \(lines[later].file) line \(lines[later].number)")
                } else {
                    return problem(.deleted(missing: exp...(r.seq - 1)), i,
                        "prev does not match the record before it and seq jumps from \(exp - 1) to \(r.seq)")
                }
            } else if !prevOK {
                // Either the record before changed (this prev still names its old hash) or this line changed.
                if nextPrevMatches(i) != false, i > 0 {
                    var r2 = problem(.edited, i - 1, "its hash no longer matches the prev of the next record (\(lines[i].file) line \(lines[i].number))")
                    r2.problem?.seq = parsed[i - 1]?.seq
                    return r2
                }
                return problem(.edited, i, i == 0 ? "prev is not the genesis value" : "prev does not match the hash of the record before it")
            }
            if result.firstSeq == nil { result.firstSeq = r.seq }
            result.lastSeq = r.seq
            result.records += 1
            expectedSeq = r.seq + 1
            prevHash = hashes[i]
            if let head, r.seq == head.seq {
                headSeen = true
                if head.hash != hashes[i] {
                    return problem(.edited, i, "the record at the head's seq does not hash to the head (\(head.hash.prefix(12)))")
                }
            }
        }
        hashes.removeAll()

        guard let head else {
            result.warnings.append("no head to compare with: a cut-off tail cannot be detected")
            return result
        }
        let last = result.lastSeq ?? 0
        if head.seq > last {
            var r = result
            r.problem = AuditProblem(
                kind: .truncatedTail(headSeq: head.seq), file: lines.last?.file ?? (names.last?.description ?? "(no files)"),
                line: lines.last?.number ?? 0, seq: result.lastSeq,
                detail: "records \(last + 1)-\(head.seq) are missing from the end")
            return r
        }
        if head.seq < last {
            if head.seq > 0 && !headSeen && (result.firstSeq ?? 1) <= head.seq {
                result.problem = AuditProblem(kind: .edited, file: lines.last!.file, line: lines.last!.number, seq: last,
                    detail: "the head's record seq \(head.seq) is not in the log")
                return result
            }
            result.warnings.append(
                "the head (seq \(head.seq)) is behind the log (seq \(last)): its last write was lost; the writer advances it at start")
        }
        return result
    }
}
