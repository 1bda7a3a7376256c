import Glibc

/// A wall-clock instant in whole milliseconds since the Unix epoch (UTC), as the audit log stores it.
public struct AuditTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) { self.millisecondsSinceEpoch = millisecondsSinceEpoch }

    public static func < (a: AuditTime, b: AuditTime) -> Bool { a.millisecondsSinceEpoch < b.millisecondsSinceEpoch }

    /// Whole days since 1970-01-01 (floor), the unit of daily rotation and per-day reports.
    public var dayNumber: Int64 { floorDiv(millisecondsSinceEpoch, 86_400_000) }

    public static let millisecondsPerDay: Int64 = 86_400_000

    /// The start (00:00:00.000 UTC) of a day number.
    public static func startOfDay(_ day: Int64) -> AuditTime { AuditTime(millisecondsSinceEpoch: day * 86_400_000) }

    public func adding(days: Int64) -> AuditTime {
        AuditTime(millisecondsSinceEpoch: millisecondsSinceEpoch + days * 86_400_000)
    }

    /// RFC 3339 in UTC with milliseconds: `2026-12-03T15:54:19.123Z`.
    public var rfc3339: String {
        let day = dayNumber
        let msOfDay = millisecondsSinceEpoch - day * 86_400_000
        let (y, m, d) = civilFromDays(day)
        let h = msOfDay / 3_600_000
        let mi = (msOfDay / 60_000) % 60
        let s = (msOfDay / 1000) % 60
        let ms = msOfDay % 1000
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(h, 2)):\(pad(mi, 2)):\(pad(s, 2)).\(pad(ms, 3))Z"
    }

    /// `rfc3339`'s bytes appended to `out`.
    public func appendRFC3339(to out: inout [UInt8]) {
        let day = dayNumber
        let msOfDay = millisecondsSinceEpoch - day * 86_400_000
        let (y, m, d) = civilFromDays(day)
        guard y >= 0 && y <= 9999 else {
            out.append(contentsOf: rfc3339.utf8)
            return
        }
        JSONBytes.appendPadded(Int(y), width: 4, to: &out)
        out.append(UInt8(ascii: "-"))
        JSONBytes.appendPadded(Int(m), width: 2, to: &out)
        out.append(UInt8(ascii: "-"))
        JSONBytes.appendPadded(Int(d), width: 2, to: &out)
        out.append(UInt8(ascii: "T"))
        JSONBytes.appendPadded(Int(msOfDay / 3_600_000), width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        JSONBytes.appendPadded(Int((msOfDay / 60_000) % 60), width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        JSONBytes.appendPadded(Int((msOfDay / 1000) % 60), width: 2, to: &out)
        out.append(UInt8(ascii: "."))
        JSONBytes.appendPadded(Int(msOfDay % 1000), width: 3, to: &out)
        out.append(UInt8(ascii: "Z"))
    }

    /// `YYYY-MM-DD` of the UTC day.
    public var dateString: String { AuditTime.dateString(day: dayNumber) }

    /// `YYYYMMDD` of the UTC day, as used in audit file names.
    public var compactDate: String {
        let (y, m, d) = civilFromDays(dayNumber)
        return "\(pad(y, 4))\(pad(m, 2))\(pad(d, 2))"
    }

    public static func dateString(day: Int64) -> String {
        let (y, m, d) = civilFromDays(day)
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))"
    }

    /// ISO 8601 week of the UTC day, `2026-W49`.
    public var isoWeek: String {
        let day = dayNumber
        // 1970-01-01 was a Thursday; ISO weekday 1 = Monday.
        let weekday = floorMod(day + 3, 7) + 1
        let thursday = day - (weekday - 1) + 3
        let (y, _, _) = civilFromDays(thursday)
        let jan1 = daysFromCivil(y, 1, 1)
        let week = (thursday - jan1) / 7 + 1
        return "\(pad(y, 4))-W\(pad(week, 2))"
    }

    public var description: String { rfc3339 }

    /// The current wall-clock time.
    public static func now() -> AuditTime {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return AuditTime(millisecondsSinceEpoch: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
    }

    /// Parses `YYYY-MM-DD` (start of that UTC day) or RFC 3339 with `Z` or a numeric offset and optional
    /// fraction. Nil when malformed.
    public init?(parsing text: String) {
        let b = Array(text.utf8)
        func num(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= b.count else { return nil }
            var v: Int64 = 0
            for i in from..<(from + count) {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int64(b[i] - 48)
            }
            return v
        }
        guard b.count >= 10, let y = num(0, 4), b[4] == UInt8(ascii: "-"), let mo = num(5, 2),
            b[7] == UInt8(ascii: "-"), let d = num(8, 2), (1...12).contains(mo), d >= 1, d <= daysInMonth(y, mo)
        else { return nil }
        let day = daysFromCivil(y, mo, d)
        if b.count == 10 {
            self.init(millisecondsSinceEpoch: day * 86_400_000)
            return
        }
        guard b.count >= 20, b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == UInt8(ascii: " "),
            let h = num(11, 2), b[13] == UInt8(ascii: ":"), let mi = num(14, 2), b[16] == UInt8(ascii: ":"),
            let s = num(17, 2), h < 24, mi < 60, s < 61
        else { return nil }
        var i = 19
        var ms: Int64 = 0
        if i < b.count && b[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < b.count && b[i] >= 48 && b[i] <= 57 {
                if digits < 3 { ms = ms * 10 + Int64(b[i] - 48) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            if digits < 3 { for _ in digits..<3 { ms *= 10 } }
        }
        var offsetMinutes: Int64 = 0
        guard i < b.count else { return nil }
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign: Int64 = b[i] == UInt8(ascii: "+") ? 1 : -1
            guard let oh = num(i + 1, 2), i + 3 < b.count, b[i + 3] == UInt8(ascii: ":"), let om = num(i + 4, 2)
            else { return nil }
            offsetMinutes = sign * (oh * 60 + om)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let ms0 = day * 86_400_000 + h * 3_600_000 + mi * 60_000 + min(s, 59) * 1000 + ms
        self.init(millisecondsSinceEpoch: ms0 - offsetMinutes * 60_000)
    }
}

func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }
func floorMod(_ a: Int64, _ b: Int64) -> Int64 { a - floorDiv(a, b) * b }

private func pad(_ v: Int64, _ width: Int) -> String {
    let s = String(v)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}

private func daysInMonth(_ y: Int64, _ m: Int64) -> Int64 {
    switch m {
    case 2: (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28
    case 4, 6, 9, 11: 30
    default: 31
    }
}

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian).
func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
    let y = m <= 2 ? y0 - 1 : y0
    let era = floorDiv(y, 400)
    let yoe = y - era * 400
    let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
}

func civilFromDays(_ z0: Int64) -> (Int64, Int64, Int64) {
    let z = z0 + 719_468
    let era = floorDiv(z, 146_097)
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let y = yoe + era * 400
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    return (m <= 2 ? y + 1 : y, m, d)
}
