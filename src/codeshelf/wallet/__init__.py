"""wallet domain."""
