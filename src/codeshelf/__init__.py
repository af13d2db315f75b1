"""codeshelf."""
