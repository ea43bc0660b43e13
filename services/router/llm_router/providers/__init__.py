"""Upstream providers behind one interface (see `base`)."""

from __future__ import annotations

from llm_router.errors import ConfigError
from llm_router.policy.schema import (
    BedrockProvider as BedrockConfig,
)
from llm_router.policy.schema import (
    OpenAIProvider as OpenAIConfig,
)
from llm_router.policy.schema import (
    SimulatedProvider as SimulatedConfig,
)
from llm_router.providers.base import Completion, Provider, UpstreamCall, Usage


def build_provider(
    name: str, config: SimulatedConfig | OpenAIConfig | BedrockConfig
) -> Provider:
    """Build the provider a policy entry describes; heavy SDKs load lazily."""
    if isinstance(config, SimulatedConfig):
        from llm_router.providers.simulated import SimulatedProvider

        return SimulatedProvider(name, config)
    if isinstance(config, OpenAIConfig):
        from llm_router.providers.openai import OpenAIProvider

        return OpenAIProvider(name, config)
    if isinstance(config, BedrockConfig):
        from llm_router.providers.bedrock import BedrockProvider

        return BedrockProvider(name, config)
    msg = (
        f"Provider {name!r} has an unknown type. "
        "Known provider types: simulated, openai, bedrock."
    )
    raise ConfigError(msg)


__all__ = ["Completion", "Provider", "UpstreamCall", "Usage", "build_provider"]
