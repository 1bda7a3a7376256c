import Foundation
import SeedPosix
import Testing

@testable import SeedHTTPServer

@Suite struct TransportBodyPlanTests {
    static let file: SharedFile = {
        let path = TransportFixtures.directory + "/plan.bin"
        _ = FileManager.default.createFile(atPath: path, contents: Data((0..<100).map { UInt8($0) }))
        return try! SharedFile(openingForReading: path)
    }()

    /// Materializes a sliceable plan into bytes, reading file segments with pread.
    func bytes(_ segments: [BodySegment]) throws -> [UInt8] {
        var out: [UInt8] = []
        for s in segments {
            switch s {
            case .bytes(let b): out += b
            case .file(let f, let offset, let length):
                var buffer = [UInt8](repeating: 0, count: Int(length))
                let n = try buffer.withUnsafeMutableBytes { try f.read(into: $0, at: offset) }
                out += buffer[0..<n]
            case .stream: Issue.record("stream in a sliceable plan")
            }
        }
        return out
    }

    @Test func slicesMatchTheWholeAtEveryRange() throws {
        let plan: [BodySegment] = [
            .bytes([200, 201, 202]), .file(Self.file, offset: 10, length: 20), .bytes([]), .file(Self.file, offset: 50, length: 7),
        ]
        let whole = try bytes(plan)
        #expect(whole.count == 30)
        for start in 0..<whole.count {
            for count in 1...(whole.count - start) {
                let slice = BodyPlan.slice(plan, start: UInt64(start), count: UInt64(count))
                #expect(try bytes(slice) == Array(whole[start..<start + count]), "\(start)+\(count)")
            }
        }
    }

    @Test func ifRangeNeedsAnExactStrongValidator() {
        let len: UInt64 = 1000
        #expect(BodyPlan.rangeAnswer(range: nil, ifRange: nil, etag: "\"a\"", length: len) == .full)
        #expect(
            BodyPlan.rangeAnswer(range: "bytes=0-9", ifRange: nil, etag: nil, length: len)
                == .partial(start: 0, end: 9))
        #expect(
            BodyPlan.rangeAnswer(range: "bytes=0-9", ifRange: "\"a\"", etag: "\"a\"", length: len)
                == .partial(start: 0, end: 9))
        #expect(
            BodyPlan.rangeAnswer(range: "bytes=0-9", ifRange: "\"b\"", etag: "\"a\"", length: len)
                == .full)
        #expect(
            BodyPlan.rangeAnswer(range: "bytes=0-9", ifRange: "W/\"a\"", etag: "W/\"a\"", length: len)
                == .full)
        let date = "Tue, 01 Dec 2026 10:00:00 GMT"
        #expect(BodyPlan.rangeAnswer(range: "bytes=5-", ifRange: date, etag: "\"a\"", length: len) == .full)
        #expect(
            BodyPlan.rangeAnswer(range: "bytes=1000-", ifRange: nil, etag: nil, length: len)
                == .unsatisfiable)
    }

    @Test func serverOwnedFieldsAndDecimalFormatting() {
        for name in ["Content-Length", "content-length", "CONNECTION", "Date", "Transfer-Encoding"] {
            #expect(isServerOwnedField(name), "\(name)")
        }
        for name in ["Content-Type", "Dated", "ETag", "Connectio", "content-lengtH2", ""] {
            #expect(!isServerOwnedField(name), "\(name)")
        }
        for value: UInt64 in [0, 1, 9, 10, 99, 100, 12345, 1 << 40, UInt64.max] {
            var out: [UInt8] = []
            appendDecimal(value, to: &out)
            #expect(String(decoding: out, as: UTF8.self) == String(value))
        }
    }
}
