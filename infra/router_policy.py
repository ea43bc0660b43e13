"""The routing policy a stack deploys, validated by the router's own parser.

The stack never re-states tiers, model ids or prices: it reads them from the
policy file, after `llm_router.policy.parse_policy` has accepted it. A policy
the router would refuse fails here, with the router's message, before any
resource is declared. The exact text is what reaches the runtime.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from llm_router.errors import ConfigError
from llm_router.policy import Policy, parse_policy
from llm_router.policy.schema import BedrockProvider

# Prefixes of Bedrock's system-defined cross-region inference profiles.
GEO_PREFIXES: Final = ("us", "eu", "apac", "jp", "au", "ca", "us-gov", "global")


@dataclass(frozen=True)
class BedrockTier:
    """One policy tier served by Bedrock, as the stacks need to see it.

    `model` is what the router would invoke without a stack: the tier's
    `target` when set, else its `model`. The tier's profile copies from it.
    """

    tier: str
    model: str
    region: str

    @property
    def cross_region(self) -> bool:
        """Whether the model id names a system-defined cross-region profile."""
        return self.model.split(".", 1)[0] in GEO_PREFIXES

    @property
    def foundation_model(self) -> str:
        """The foundation-model id the tier's requests finally reach."""
        return self.model.split(".", 1)[1] if self.cross_region else self.model


@dataclass(frozen=True)
class RouterPolicy:
    """A validated policy and the exact text it was parsed from."""

    text: str
    source: str
    policy: Policy

    @property
    def tier_names(self) -> list[str]:
        """Tier names, cheapest first, as the policy lists them."""
        return self.policy.tier_names

    @property
    def bedrock_tiers(self) -> list[BedrockTier]:
        """The tiers whose provider is Bedrock, cheapest first."""
        found = []
        for name, tier in self.policy.tiers.items():
            provider = self.policy.providers[tier.provider]
            if not isinstance(provider, BedrockProvider):
                continue
            # The policy validator guarantees one of the two regions is set.
            region = tier.region or provider.region or ""
            found.append(
                BedrockTier(tier=name, model=tier.invoke_target, region=region)
            )
        return found


def load_router_policy(path: str, *, root: Path, region: str) -> RouterPolicy:
    """Read the policy file (relative to the project root) and validate it.

    `${AWS_REGION}` in the file means the stack's region, as it will for the
    router at run time (Lambda, ECS and EKS set AWS_REGION to the region the
    task runs in): the deployer's shell must not decide where the stack
    creates a tier's inference profile.
    """
    if not path:
        msg = "policyFile is empty; point it at a policy YAML file."
        raise ConfigError(msg)
    file = Path(path) if Path(path).is_absolute() else root / path
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        msg = (
            f"Cannot read the policy file {path!r} (policyFile, resolved to "
            f"{str(file)!r}): {exc.strerror}."
        )
        raise ConfigError(msg) from None
    return parse_router_policy(text, source=path, region=region)


def parse_router_policy(
    text: str, *, source: str, region: str | None = None
) -> RouterPolicy:
    """Validate policy text with the router's parser and the stacks' own rules.

    With `region`, `${AWS_REGION}` and `${AWS_DEFAULT_REGION}` expand to it.
    """
    environ = None
    if region is not None:
        environ = {**os.environ, "AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    policy = parse_policy(text, source=source, environ=environ)
    router_policy = RouterPolicy(text=text, source=source, policy=policy)
    for tier in router_policy.bedrock_tiers:
        if tier.model.startswith("arn:"):
            msg = (
                f"{source}: tiers.{tier.tier} invokes an ARN ({tier.model!r}). The "
                "stacks create the tier's inference profile themselves; give the "
                "model id or a cross-region profile id such as "
                "'us.amazon.nova-lite-v1:0'."
            )
            raise ConfigError(msg)
    return router_policy
