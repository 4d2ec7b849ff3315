"""The notify domain."""
