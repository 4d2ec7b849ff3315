"""The stores domain."""
