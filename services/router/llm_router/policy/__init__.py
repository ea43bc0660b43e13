"""The routing policy: one YAML file, validated at load, shared by every stack."""

from llm_router.policy.loader import (
    load_default_policy,
    load_policy,
    parse_policy,
)
from llm_router.policy.schema import Policy, ProviderConfig, TierConfig

__all__ = [
    "Policy",
    "ProviderConfig",
    "TierConfig",
    "load_default_policy",
    "load_policy",
    "parse_policy",
]
