"""Infrastructure every domain shares; it imports no domain."""
