"""The large stack (10,000+ requests a day): EKS, Karpenter GPU Spot, NIM, Triton."""

from __future__ import annotations

import pulumi

from infra.config import KitConfig, StackConfigError
from infra.large.config import LargeConfig, parse_large_config
from infra.large.stack import LargeStack, LargeStackArgs

__all__ = ["LargeStack", "LargeStackArgs", "build", "require_ngc_key"]


def require_ngc_key(key: str, large: LargeConfig) -> str:
    """The NGC key, or a clear error when an in-cluster tier needs one."""
    if large.nim_tiers and not key:
        tiers = ", ".join(tier.tier for tier in large.nim_tiers)
        msg = (
            f"ngcApiKey is empty, but tiers {tiers} are served by NIM in the "
            "cluster. Run `pulumi config set --secret ngcApiKey <key>`."
        )
        raise StackConfigError(msg)
    return key


def build(config: KitConfig) -> dict[str, pulumi.Input[object]]:
    """Validate the large stack's config, declare it, and return its outputs."""
    large = parse_large_config(config)
    secret = pulumi.Config().get_secret("ngcApiKey") or pulumi.Output.secret("")
    # Secrets are only readable as outputs; the check runs when it resolves.
    ngc_api_key = secret.apply(lambda key: require_ngc_key(key, large))
    stack = LargeStack(
        config.name,
        LargeStackArgs(config=config, large=large, ngc_api_key=ngc_api_key),
    )
    return stack.outputs
