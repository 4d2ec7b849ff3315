"""The terminals domain."""
