import SeedCore

/// INTERIM until SeedUpstream's client lands: online mode cannot start without it.
func makeUpstream(_ u: UpstreamSection, logger: Logger) throws -> any MirrorUpstream {
    throw StartupError("upstream client not available in this build; set upstream.mode to offline")
}
