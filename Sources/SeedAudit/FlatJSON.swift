/// A value of a flat JSON object as the audit log writes it: no nesting.
enum FlatJSONValue: Equatable {
    case string(String)
    case integer(Int64)
    case bool(Bool)
    case null
}

/// Parses one flat JSON object (`{"k": "v", "n": 1, "b": true, "z": null}`), keeping key order.
/// The audit log writes only such objects; anything else (nesting, floats) is rejected with a reason.
struct FlatJSONParser {
    private let b: [UInt8]
    private var i = 0

    init(_ bytes: some Collection<UInt8>) { b = Array(bytes) }

    static func parse(_ bytes: some Collection<UInt8>) -> Result<[(String, FlatJSONValue)], FlatJSONError> {
        var p = FlatJSONParser(bytes)
        do throws(FlatJSONError) {
            return .success(try p.object())
        } catch {
            return .failure(error)
        }
    }

    private mutating func ws() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
    }

    private mutating func expect(_ c: UInt8) throws(FlatJSONError) {
        ws()
        guard i < b.count, b[i] == c else { throw FlatJSONError(offset: i, reason: "expected '\(Character(Unicode.Scalar(c)))'") }
        i += 1
    }

    mutating func object() throws(FlatJSONError) -> [(String, FlatJSONValue)] {
        try expect(UInt8(ascii: "{"))
        var out: [(String, FlatJSONValue)] = []
        ws()
        if i < b.count, b[i] == UInt8(ascii: "}") {
            i += 1
        } else {
            while true {
                ws()
                let k = try string()
                try expect(UInt8(ascii: ":"))
                ws()
                out.append((k, try value()))
                ws()
                guard i < b.count else { throw FlatJSONError(offset: i, reason: "unterminated object") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; break }
                throw FlatJSONError(offset: i, reason: "expected ',' or '}'")
            }
        }
        ws()
        guard i == b.count else { throw FlatJSONError(offset: i, reason: "trailing bytes after the object") }
        return out
    }

    private mutating func value() throws(FlatJSONError) -> FlatJSONValue {
        guard i < b.count else { throw FlatJSONError(offset: i, reason: "missing value") }
        switch b[i] {
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), 48...57:
            let start = i
            if b[i] == UInt8(ascii: "-") { i += 1 }
            let digitsStart = i
            while i < b.count, b[i] >= 48 && b[i] <= 57 { i += 1 }
            guard i > digitsStart, i - digitsStart <= 18 else { throw FlatJSONError(offset: start, reason: "bad integer") }
            if i < b.count, b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                throw FlatJSONError(offset: start, reason: "only integers are expected")
            }
            return .integer(Int64(String(decoding: b[start..<i], as: UTF8.self))!)
        default:
            throw FlatJSONError(offset: i, reason: "nested or unknown value")
        }
    }

    private mutating func literal(_ word: String) throws(FlatJSONError) {
        let w = Array(word.utf8)
        guard i + w.count <= b.count, Array(b[i..<(i + w.count)]) == w else {
            throw FlatJSONError(offset: i, reason: "bad literal")
        }
        i += w.count
    }

    private mutating func hex4() throws(FlatJSONError) -> UInt32 {
        guard i + 4 <= b.count else { throw FlatJSONError(offset: i, reason: "short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 97...102: d = UInt32(c - 87)
            case 65...70: d = UInt32(c - 55)
            default: throw FlatJSONError(offset: i, reason: "bad \\u escape")
            }
            v = v * 16 + d
            i += 1
        }
        return v
    }

    private mutating func string() throws(FlatJSONError) -> String {
        guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw FlatJSONError(offset: i, reason: "expected a string") }
        i += 1
        var out = [UInt8]()
        while true {
            guard i < b.count else { throw FlatJSONError(offset: i, reason: "unterminated string") }
            let c = b[i]
            i += 1
            if c == UInt8(ascii: "\"") { break }
            if c < 0x20 { throw FlatJSONError(offset: i - 1, reason: "control character in string") }
            if c != UInt8(ascii: "\\") { out.append(c); continue }
            guard i < b.count else { throw FlatJSONError(offset: i, reason: "unterminated escape") }
            let e = b[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
                        throw FlatJSONError(offset: i, reason: "lone surrogate")
                    }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw FlatJSONError(offset: i, reason: "bad surrogate pair") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let u = Unicode.Scalar(scalar) else { throw FlatJSONError(offset: i, reason: "bad code point") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default: throw FlatJSONError(offset: i - 1, reason: "bad escape")
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else {
            throw FlatJSONError(offset: i, reason: "string is not valid UTF-8")
        }
        return s
    }
}

struct FlatJSONError: Error, CustomStringConvertible {
    var offset: Int
    var reason: String
    var description: String { "\(reason) at byte \(offset)" }
}
