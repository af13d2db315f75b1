"""Idempotency keys: a retried request is run once, and its first answer replayed."""
