"""claims domain: the code-support policy, claims, evidence, triage and remedies."""
