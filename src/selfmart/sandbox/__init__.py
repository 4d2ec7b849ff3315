"""The sandbox domain."""
