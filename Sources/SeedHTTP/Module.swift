enum SeedHTTPModule {}
