"""The HTTP face: the seed's API at /api/data-migration over the same service as the CLI and TUI."""
