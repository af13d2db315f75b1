"""stock domain."""
