import Foundation

/// Wall-clock and memory bounds in tests are set for an uninstrumented debug build. `scripts/sanitize` runs the
/// suite with `SEEDMIRROR_SANITIZER=address|thread`: a sanitizer makes the code 2–15 times slower and changes
/// what resident memory means (shadow memory, ASan's quarantine of freed blocks, TSan's history), so
/// timing bounds are multiplied by `timeScale` and RSS bounds are not asserted (the values are still printed).
public enum TestBudget {
    /// The sanitizer the suite runs under (`address`, `thread`), or nil.
    public static let sanitizer: String? = {
        let v = ProcessInfo.processInfo.environment["SEEDMIRROR_SANITIZER"] ?? ""
        return v.isEmpty ? nil : v
    }()

    /// 1 normally; `SEEDMIRROR_TEST_TIME_SCALE` when set, else 4 under AddressSanitizer and 8 under
    /// ThreadSanitizer.
    public static let timeScale: Double = {
        if let s = ProcessInfo.processInfo.environment["SEEDMIRROR_TEST_TIME_SCALE"], let v = Double(s), v >= 1 {
            return v
        }
        switch sanitizer {
        case nil: return 1
        case "thread": return 8
        default: return 4
        }
    }()

    /// `seconds` scaled for the build under test.
    public static func seconds(_ seconds: Double) -> Double { seconds * timeScale }

    /// `duration` scaled for the build under test.
    public static func duration(_ duration: Duration) -> Duration { duration * timeScale }

    /// Whether resident-memory bounds are meaningful (not under a sanitizer).
    public static var checksMemory: Bool { sanitizer == nil }
}
