"""operators domain: the operator's API keys."""
