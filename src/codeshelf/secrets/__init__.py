"""secrets domain: rotating the encryption secret over everything sealed or fingerprinted with
it (codes, webhook secrets, TOTP secrets, evidence files), each domain's rows by its own
service."""
