"""Decision caches: identical turns under the same policy are classified once."""

from llm_router.cache.base import DecisionCache, cache_key
from llm_router.cache.memory import MemoryCache

__all__ = ["DecisionCache", "MemoryCache", "cache_key"]
