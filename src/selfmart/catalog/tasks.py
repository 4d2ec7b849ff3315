"""Background jobs of the catalog (placeholder until wired to the jobs framework)."""
