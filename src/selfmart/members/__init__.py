"""Members: profiles, the points ledger, tiers and what they give."""
