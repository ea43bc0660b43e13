"""Keeping the router up and honest: fallbacks, breakers, auth, limits, budgets."""
