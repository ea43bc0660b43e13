"""The program: read and validate config, build the selected stack, export outputs.

Each stack package (`infra.small`, `infra.medium`, `infra.large`) exposes
`build(config: KitConfig) -> dict[str, pulumi.Input[object]]`, which declares
the stack and returns its outputs. The large stack is imported only when it is
selected, so the small and medium stacks never load the Kubernetes SDKs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

import pulumi

from infra import metrics
from infra.config import KitConfig, StackConfigError, parse_config
from infra.project import config_schema
from llm_router.errors import ConfigError

StackBuilder = Callable[[KitConfig], Mapping[str, pulumi.Input[object]]]


def read_config() -> KitConfig:
    """Read every declared key through `pulumi.Config` and validate it."""
    config = pulumi.Config()
    raw = {}
    for key in config_schema():
        if key.secret:
            continue
        value = config.get(key.name)
        if value is not None:
            raw[key.name] = value
    region = pulumi.Config("aws").get("region")
    if not region:
        msg = "aws:region is not set; run `pulumi config set aws:region us-east-1`."
        raise StackConfigError(msg)
    return parse_config(
        raw,
        project=pulumi.get_project(),
        stack=pulumi.get_stack(),
        region=region,
        api_keys=config.get_secret("apiKeys") or "",
    )


def select_builder(size: str) -> StackBuilder:
    """The `build` function of the stack package for this size."""
    try:
        module = importlib.import_module(f"infra.{size}")
    except ModuleNotFoundError as exc:
        if exc.name != f"infra.{size}":
            raise
        msg = (
            f"The {size!r} stack is not part of this checkout (no infra/{size}/ "
            "package). Choose stackSize small or medium."
        )
        raise StackConfigError(msg) from None
    builder: StackBuilder = module.build
    return builder


def build_program() -> Mapping[str, pulumi.Input[object]]:
    """Validate everything, then declare the selected stack; returns its outputs."""
    try:
        metrics.check_contract()
        config = read_config()
        builder = select_builder(config.size)
        return builder(config)
    except (ConfigError, StackConfigError) as exc:
        # RunError ends the program with the message alone, no traceback.
        raise pulumi.RunError(str(exc)) from None


def run() -> None:
    """Entry point of `pulumi up` and `pulumi preview`."""
    for key, value in build_program().items():
        pulumi.export(key, value)
