enum SeedNetModule {}
