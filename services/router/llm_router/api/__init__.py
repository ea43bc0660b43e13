"""HTTP endpoints: OpenAI-compatible chat, routing decisions, operations."""
