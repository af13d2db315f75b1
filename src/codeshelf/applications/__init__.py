"""Requests for API access (seed 003: access is reviewed manually), from a public form."""
