"""The operator console (/ops/): the wholesaler's staff at work, each page calling the same
domain services as the CLI and the admin API."""
