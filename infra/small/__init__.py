"""The small stack (~100 requests a day): Lambda, Function URL, DynamoDB cache."""

from __future__ import annotations

from typing import Final

import pulumi

from infra.config import KitConfig, StackConfigError
from infra.small.stack import SmallStack, SmallStackArgs

# Lambda caps all environment variables of a function at 4 KB together. The
# policy travels inline, so it gets what the other variables leave; with three
# tier profile ARNs, the table name and the secret ARN they take ~900 bytes
# (a test measures it), so 1 KB is kept for them.
LAMBDA_ENV_LIMIT_BYTES: Final = 4096
OTHER_ENV_BYTES: Final = 1024

__all__ = ["SmallStack", "SmallStackArgs", "build", "check_small"]


def check_small(config: KitConfig) -> None:
    """Refuse a policy that cannot fit in a Lambda environment, before any resource."""
    size = len(config.policy.text.encode())
    room = LAMBDA_ENV_LIMIT_BYTES - OTHER_ENV_BYTES
    if size > room:
        msg = (
            f"The policy {config.policy.source!r} is {size} bytes; on Lambda it "
            f"travels in the environment, which leaves it {room} bytes. Remove "
            "comments or unused routing entries, or use the medium stack."
        )
        raise StackConfigError(msg)


def build(config: KitConfig) -> dict[str, pulumi.Input[object]]:
    """Declare the small stack and return its outputs."""
    check_small(config)
    stack = SmallStack(config.name, SmallStackArgs(config=config))
    return stack.outputs
