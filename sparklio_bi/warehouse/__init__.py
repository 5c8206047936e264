"""The warehouse, in data-flow order: views, migrations, rollups, seed, samples."""
