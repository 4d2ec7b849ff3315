"""The inventory domain: stock per store kept as a ledger, alerts, expiry batches."""
