"""The agent runtime: a worker process runs one planned executor (docs/agents.md)."""
