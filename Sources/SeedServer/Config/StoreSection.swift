/// Configuration of the store part. Placeholder until that part lands: accepts no keys.
public struct StoreSection: Sendable {
    /// Reads this section's keys from the root object; unknown keys are left for the root to reject.
    public init(root: ConfigObject, baseDir: String) throws(ConfigError) {}
}
