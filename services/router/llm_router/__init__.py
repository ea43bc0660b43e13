"""Cost-efficient LLM router: each turn goes to the cheapest capable tier."""

__version__ = "0.1.0"
