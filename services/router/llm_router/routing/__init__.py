"""From a chat request to a tier: turn extraction, the decision, dispatch."""
