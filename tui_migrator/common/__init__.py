"""The vocabulary every layer shares: errors, settings, the ParkML categories, the migration
configuration and the clock. Imports nothing else of tui-migrator."""
