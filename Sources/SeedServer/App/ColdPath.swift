import Foundation
public import SeedCore
import SeedHTTPServer
import SeedLicensing
import SeedPosix
import SeedStore

/// Why a package answer could not be made; `status` and `reason` are what the seed sees.
public struct PackageError: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var reason: String
    public init(_ status: Int, _ reason: String) {
        self.status = status
        self.reason = reason
    }
    public var description: String { "\(status) \(reason)" }
}

/// Settings of the package side of the routes.
public struct PackageServiceSettings: Sendable {
    /// A cached package older than this is refreshed from upstream on the next request (online mode).
    public var refreshInterval: Duration = .seconds(24 * 3600)
    /// How long a follower waits for the leader's package download before giving up with 504.
    public var followerWaitTimeout: Duration = .seconds(30 * 60)
    /// Size of one read from upstream (and one relay chunk).
    public var readChunkBytes: Int = 256 * 1024
    /// Online: fetch missing packages from upstream. Offline: serve what the store has, 503 otherwise.
    public var online: Bool = true
    /// Refuse (and never relay to a seed) an upstream package body that does not start like a ZIP: upstream
    /// garbage must not reach a seed under a 200. Off only for tests over an in-memory catalog of raw bytes.
    public var requireZipSignature: Bool = true
    public init() {}
}

/// The route's side of a cold miss: where the leading request's issuer hands over the relayed body.
/// The route awaits `first()`; whichever comes first (a relay to stream, or the desk's outcome) wins.
final class ServeHandoff: Sendable {
    enum Signal: Sendable {
        case relay(RelayStream)
        case decided(LicenseOutcome)
    }
    private struct State {
        var signal: Signal?
        var waiter: CheckedContinuation<Signal, Never>?
    }
    private let state = Lock(State())

    /// Records `s` unless a signal came earlier; returns whether it was taken.
    @discardableResult
    func offer(_ s: Signal) -> Bool {
        let (taken, w) = state.withLock { st -> (Bool, CheckedContinuation<Signal, Never>?) in
            guard st.signal == nil else { return (false, nil) }
            st.signal = s
            defer { st.waiter = nil }
            return (true, st.waiter)
        }
        w?.resume(returning: s)
        return taken
    }

    func first() async -> Signal {
        await withCheckedContinuation { c in
            let s = state.withLock { st -> Signal? in
                if let s = st.signal { return s }
                st.waiter = c
                return nil
            }
            if let s { c.resume(returning: s) }
        }
    }
}

/// Packages and the upstream calls behind them: the cold path with its single-flight per package,
/// and the `LicenseIssuer` work (package download when the package is needed anyway, else license-only).
public final class PackageService: Sendable {
    let catalog: any PackageCatalog
    let upstream: (any MirrorUpstream)?
    let settings: PackageServiceSettings
    let logger: Logger
    let now: @Sendable () -> Double
    let flights = FlightTable<PackageKey, CachedPackage, IssueError>()
    let counters = Lock(PackageCounters())
    let metrics: (any RouteMetrics)?

    public init(
        catalog: any PackageCatalog, upstream: (any MirrorUpstream)?, settings: PackageServiceSettings,
        logger: Logger, metrics: (any RouteMetrics)? = nil, now: @escaping @Sendable () -> Double = wallClockSeconds
    ) {
        self.metrics = metrics
        self.catalog = catalog
        self.upstream = upstream
        self.settings = settings
        self.logger = logger
        self.now = now
    }

    /// Counts for metrics and tests.
    public var snapshot: PackageCounters { counters.withLock { $0 } }

    func isFresh(_ p: CachedPackage) -> Bool {
        guard settings.online else { return true }
        let age = now() - p.fetchedAt
        let limit = Double(settings.refreshInterval.components.seconds)
        return age >= 0 && age < limit
    }

    // MARK: - Issuing (called by the desk through a RequestIssuer)

    /// Obtains a license for `request` from upstream. When the package for its (os, arch) is missing or
    /// stale and nobody is fetching it, this request leads the package download (which carries its
    /// license) and, given a `handoff`, relays the ZIP to its seed as it arrives. Otherwise it waits for a
    /// running download (never starting its own) and asks for the license alone.
    func issue(_ request: LicenseRequest, hostKey: String, handoff: ServeHandoff?) async throws(IssueError)
        -> IssuedLicense
    {
        guard let upstream else {
            throw IssueError(.notSent, "the mirror is offline and has no license for \(hostKey)")
        }
        if request.route == .licenseOnly {
            return try await licenseOnly(upstream, hostKey: hostKey, request: request, handoff: handoff)
        }
        let key = PackageKey(os: request.os, arch: request.arch)
        let cached = try await currentPackage(key)
        if let cached, isFresh(cached) {
            return try await licenseOnly(upstream, hostKey: hostKey, request: request, handoff: handoff)
        }
        switch flights.join(key) {
        case .follow(let flight):
            counters.withLock { $0.flightWaits += 1 }
            switch await waitFor(flight) {
            case .finished(.success):
                return try await licenseOnly(upstream, hostKey: hostKey, request: request, handoff: handoff)
            case .finished(.failure) where cached != nil:
                // A stale package still serves when the refresh failed.
                return try await licenseOnly(upstream, hostKey: hostKey, request: request, handoff: handoff)
            case .finished(.failure(let e)):
                throw IssueError(.notSent, "the package download this request waited for failed: \(e.message)")
            case .timedOut:
                throw IssueError(.notSent, "timed out waiting for the package download from upstream")
            }
        case .lead(let flight):
            // Someone may have finished the download between our look and our join.
            if let again = try? await catalog.current(key), isFresh(again) {
                flights.finish(key, flight, .success(again))
                return try await licenseOnly(upstream, hostKey: hostKey, request: request, handoff: handoff)
            }
            let fetch = PackageFetch(
                host: request.hostAsked, type: request.type, os: request.os, arch: request.arch,
                comment: request.comment)
            do throws(IssueError) {
                let (package, licenses) = try await download(upstream, fetch: fetch, key: key, handoff: handoff)
                flights.finish(key, flight, .success(package))
                guard let lic = pickLicense(licenses, hostKey: hostKey) else {
                    throw IssueError(.outcomeUnknown, "the upstream package for \(hostKey) contained no license file")
                }
                return IssuedLicense(
                    bytes: try validatedLicenseBody(lic.bytes), source: .upstream, upstreamReference: lic.name)
            } catch {
                flights.finish(key, flight, .failure(error))
                throw error
            }
        }
    }

    private func waitFor(_ flight: Flight<CachedPackage, IssueError>) async
        -> Flight<CachedPackage, IssueError>.WaitResult
    {
        metrics?.flightWaiters(delta: 1)
        defer { metrics?.flightWaiters(delta: -1) }
        return await flight.wait(timeout: settings.followerWaitTimeout)
    }

    private func licenseOnly(
        _ upstream: any MirrorUpstream, hostKey: String, request: LicenseRequest, handoff: ServeHandoff?
    ) async throws(IssueError) -> IssuedLicense {
        guard upstream.canIssueLicenseOnly else {
            // No license-only route: the license comes inside a package download for this host, which is
            // imported like any other (unchanged members are not stored twice).
            let key = PackageKey(
                os: request.os.isEmpty ? "windows" : request.os, arch: request.arch.isEmpty ? "amd64" : request.arch)
            let fetch = PackageFetch(
                host: request.hostAsked, type: request.type, os: key.os, arch: key.arch, comment: request.comment)
            let (_, licenses) = try await download(upstream, fetch: fetch, key: key, handoff: handoff)
            guard let lic = pickLicense(licenses, hostKey: hostKey) else {
                throw IssueError(.outcomeUnknown, "the upstream package for \(hostKey) contained no license file")
            }
            return IssuedLicense(
                bytes: try validatedLicenseBody(lic.bytes), source: .upstream, upstreamReference: lic.name)
        }
        counters.withLock { $0.licenseOnlyCalls += 1 }
        let started = ContinuousClock.now
        defer { metrics?.upstreamCompleted(operation: "license", seconds: seconds(since: started)) }
        let lic = try await upstream.issueLicense(hostKey: hostKey, type: request.type, comment: request.comment)
        return IssuedLicense(
            bytes: try validatedLicenseBody(lic.bytes), source: lic.source, upstreamReference: lic.upstreamReference)
    }

    private func currentPackage(_ key: PackageKey) async throws(IssueError) -> CachedPackage? {
        do {
            return try await catalog.current(key)
        } catch {
            throw IssueError(.notSent, "the package store could not be read: \(error)")
        }
    }

    /// Picks the upstream ZIP's license: the member named after the host if any, else the only one.
    func pickLicense(_ licenses: [(name: String, bytes: [UInt8])], hostKey: String) -> (name: String, bytes: [UInt8])? {
        func base(_ n: String) -> String {
            let last = n.split(separator: "/").last.map(String.init) ?? n
            return last.lowercased()
        }
        if let m = licenses.first(where: { base($0.name) == hostKey + ".lic" }) { return m }
        return licenses.count == 1 ? licenses[0] : licenses.first
    }

    /// Downloads the package ZIP into a temp file (relaying it live through `handoff` when given and the
    /// length is known), then imports it. A failure at any point leaves nothing in the store.
    private func download(_ upstream: any MirrorUpstream, fetch: PackageFetch, key: PackageKey, handoff: ServeHandoff?)
        async throws(IssueError) -> (CachedPackage, [(name: String, bytes: [UInt8])])
    {
        counters.withLock { $0.packageDownloads += 1 }
        let started = ContinuousClock.now
        defer { metrics?.upstreamCompleted(operation: "package", seconds: seconds(since: started)) }
        let body = try await upstream.fetchPackage(fetch)
        let writer: TempFileWriter
        do {
            writer = try TempFileWriter(
                creatingIn: catalog.temporaryDirectory, prefix: "upstream-\(key.os)-\(key.arch)")
        } catch {
            body.cancel()
            throw IssueError(.outcomeUnknown, "cannot create a temp file for the upstream package: \(error)")
        }
        var relay: RelayStream?
        // The relay starts only once the body is seen to begin like a ZIP: a seed is never sent upstream's
        // garbage under a 200 (a body that is not a ZIP is refused before anything reaches the seed).
        var signature: [UInt8] = []
        do throws(IssueError) {
            while let chunk = try await body.read(maxBytes: settings.readChunkBytes) {
                if chunk.isEmpty { continue }
                do {
                    try writer.write(chunk)
                } catch {
                    body.cancel()
                    throw IssueError(.outcomeUnknown, "writing the upstream package to disk failed: \(error)")
                }
                if signature.count < 4 {
                    signature += chunk.prefix(4 - signature.count)
                    if signature.count == 4 {
                        guard !settings.requireZipSignature || signature == [0x50, 0x4B, 0x03, 0x04] else {
                            body.cancel()
                            throw IssueError(.outcomeUnknown, "upstream sent a package body that is not a ZIP")
                        }
                        if let handoff, let length = body.contentLength {
                            do {
                                let r = RelayStream(file: try SharedFile(openingForReading: writer.path), length: length)
                                if handoff.offer(.relay(r)) { relay = r }
                            } catch {
                                logger.warning(
                                    "cannot open the relay file; the seed waits for the whole download",
                                    [("error", "\(error)")])
                            }
                        }
                    }
                }
                if let length = body.contentLength, writer.written > length {
                    body.cancel()
                    throw IssueError(.outcomeUnknown, "upstream sent more than its Content-Length")
                }
                relay?.advance(to: writer.written)
            }
            if let length = body.contentLength, writer.written != length {
                throw IssueError(
                    .outcomeUnknown, "upstream package ended after \(writer.written) of \(length) bytes")
            }
            do { try writer.finish() } catch {
                throw IssueError(.outcomeUnknown, "saving the upstream package failed: \(error)")
            }
        } catch {
            writer.discard()
            relay?.fail(error.message)
            counters.withLock { $0.failedDownloads += 1 }
            logger.warning("upstream package download failed", [("package", "\(key)"), ("error", error.message)])
            throw error
        }
        defer { try? removeFile(atPath: writer.path) }
        let imported: ImportedPackage
        do {
            imported = try await catalog.importUpstreamZip(at: writer.path, key: key)
        } catch {
            // The seed already has upstream's complete bytes; only the cache missed out.
            relay?.complete()
            counters.withLock { $0.failedDownloads += 1 }
            logger.error("importing the upstream package failed", [("package", "\(key)"), ("error", "\(error)")])
            throw IssueError(.outcomeUnknown, "the upstream package could not be imported: \(error)")
        }
        relay?.complete()
        logger.info(
            "upstream package imported",
            [
                ("package", "\(key)"), ("bytes", String(writer.written)),
                ("duration.ms", String(Int(seconds(since: started) * 1000))),
            ])
        return (imported.package, imported.licenses)
    }

    // MARK: - Answering (after the desk granted)

    /// The package ZIP for `key` with `license` added as `<hostKey>.lic`. When the package is missing (or
    /// stale, online) it is fetched once for everyone asking: the leader downloads it with this request's
    /// host, whose license upstream already issued (so the re-ask returns the same one, PROTOCOL.md §3a).
    func packageAnswer(_ request: LicenseRequest, hostKey: String, license: [UInt8]) async throws(PackageError)
        -> (plan: PackagePlan, fromCache: Bool)
    {
        let key = PackageKey(os: request.os, arch: request.arch)
        let cached: CachedPackage?
        do { cached = try await catalog.current(key) } catch {
            throw PackageError(503, "the package store could not be read")
        }
        var package = cached
        var fromCache = true
        if cached == nil || !isFresh(cached!) {
            fromCache = false
            if let upstream {
                switch flights.join(key) {
                case .follow(let flight):
                    counters.withLock { $0.flightWaits += 1 }
                    switch await waitFor(flight) {
                    case .finished(.success(let p)): package = p
                    case .finished(.failure(let e)):
                        if cached == nil {
                            let r = seedFacingRefusal(for: e)
                            throw PackageError(r.status, r.reason)
                        }
                    case .timedOut:
                        if cached == nil { throw PackageError(504, "timed out waiting for the package from upstream") }
                    }
                case .lead(let flight):
                    if let again = try? await catalog.current(key), isFresh(again) {
                        flights.finish(key, flight, .success(again))
                        package = again
                    } else {
                        let fetch = PackageFetch(
                            host: request.hostAsked, type: request.type, os: request.os, arch: request.arch,
                            comment: request.comment)
                        do throws(IssueError) {
                            let (p, _) = try await download(upstream, fetch: fetch, key: key, handoff: nil)
                            flights.finish(key, flight, .success(p))
                            package = p
                        } catch {
                            flights.finish(key, flight, .failure(error))
                            if cached == nil {
                                let r = seedFacingRefusal(for: error)
                                throw PackageError(r.status, r.reason)
                            }
                        }
                    }
                }
            } else if cached == nil {
                throw PackageError(503, "no package for \(key.os)/\(key.arch) in the store and the mirror is offline")
            }
        }
        guard let package else { throw PackageError(503, "no package for \(key.os)/\(key.arch) in the store") }
        do {
            let plan = try await catalog.plan(key, package: package, extraMembers: [(hostKey + ".lic", license)])
            return (plan, fromCache)
        } catch {
            logger.error("planning a package answer failed", [("package", "\(key)"), ("error", "\(error)")])
            throw PackageError(500, "the cached package could not be assembled")
        }
    }
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// Seconds since the Unix epoch from the system clock.
public func wallClockSeconds() -> Double { Date().timeIntervalSince1970 }

/// Counters of the package side, for metrics and tests.
public struct PackageCounters: Sendable, Equatable {
    public var packageDownloads = 0
    public var failedDownloads = 0
    public var licenseOnlyCalls = 0
    public var flightWaits = 0
}

/// The issuer one request hands to the desk: it knows where that request's answer goes, so the leader
/// of a cold miss can start relaying before the desk has its decision.
struct RequestIssuer: LicenseIssuer {
    let service: PackageService
    let handoff: ServeHandoff?

    func issue(_ request: LicenseRequest, hostKey: String) async throws(IssueError) -> IssuedLicense {
        try await service.issue(request, hostKey: hostKey, handoff: handoff)
    }
}
