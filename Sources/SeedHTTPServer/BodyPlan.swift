import SeedHTTP

/// Pure helpers for body plans: slicing a sliceable plan to a byte range, and choosing the range answer.
enum BodyPlan {
    /// The segments covering bytes `start..<start+count` of `segments` (which must hold no streams).
    static func slice(_ segments: [BodySegment], start: UInt64, count: UInt64) -> [BodySegment] {
        var result: [BodySegment] = []
        var position: UInt64 = 0
        let end = start + count
        for segment in segments {
            let length = segment.length
            let segStart = position
            let segEnd = position + length
            position = segEnd
            if segEnd <= start || segStart >= end { continue }
            let from = max(start, segStart) - segStart
            let to = min(end, segEnd) - segStart
            switch segment {
            case .bytes(let b): result.append(.bytes(Array(b[Int(from)..<Int(to)])))
            case .file(let f, let offset, _): result.append(.file(f, offset: offset + from, length: to - from))
            case .stream: preconditionFailure("slicing a plan that holds a stream")
            }
        }
        return result
    }

    enum RangeAnswer: Equatable {
        case full
        case partial(start: UInt64, end: UInt64)
        case unsatisfiable
    }

    /// What to answer for `Range`/`If-Range` against a response that accepts ranges. `If-Range` must be the
    /// current strong `ETag`, otherwise the whole body is sent (RFC 9110 §13.1.5, strong comparison only).
    static func rangeAnswer(range: String?, ifRange: String?, etag: String?, length: UInt64) -> RangeAnswer {
        guard range != nil, ifRangeMatches(ifRange, etag: etag) else { return .full }
        switch evaluateRange(range, length: length) {
        case .full: return .full
        case .partial(let s, let e): return .partial(start: s, end: e)
        case .unsatisfiable: return .unsatisfiable
        }
    }
}
