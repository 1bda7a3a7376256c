/// Namespace placeholder until the module's first real type lands.
enum SeedStoreModule {}
