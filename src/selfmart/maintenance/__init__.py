"""Maintenance mode and what the running system is (version, migrations)."""
