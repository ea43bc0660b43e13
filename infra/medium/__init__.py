"""The medium stack (~1,000 requests a day): Fargate behind an HTTPS ALB, Redis."""

from __future__ import annotations

import pulumi

from infra.config import KitConfig
from infra.medium.stack import MediumStack, MediumStackArgs

__all__ = ["MediumStack", "MediumStackArgs", "build"]


def build(config: KitConfig) -> dict[str, pulumi.Input[object]]:
    """Declare the medium stack and return its outputs."""
    stack = MediumStack(config.name, MediumStackArgs(config=config))
    return stack.outputs
