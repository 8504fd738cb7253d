"""The use cases both faces call, each checked against the operator's role and audited.
Knows nothing of the CLI or the TUI."""
