import Foundation

/// Runs blocking work (file hashing, imports, fsync) on a thread of its own, so the Swift concurrency
/// pool, which has one thread per core, never waits for the disk.
func onBlockingThread<T: Sendable>(_ name: String = "seed-mirror-io", _ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
        let thread = Thread { c.resume(returning: body()) }
        thread.name = name
        thread.start()
    }
}

/// `onBlockingThread` for throwing work.
func onBlockingThread<T: Sendable>(_ name: String = "seed-mirror-io", throwing body: @escaping @Sendable () throws -> T)
    async throws -> T
{
    let r: Result<T, any Error> = await onBlockingThread(name) {
        do { return .success(try body()) } catch { return .failure(error) }
    }
    return try r.get()
}
