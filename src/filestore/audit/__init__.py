"""The audit trail: who did what to which account, from where. Append-only."""
