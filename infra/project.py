"""Read `Pulumi.yaml` and the stack files the way the Pulumi CLI hands them over.

The program itself only sees config through `pulumi.Config`. The offline plan
and the tests have no CLI, so they rebuild the same view here: the schema's
defaults, overridden by `stacks/Pulumi.<stack>.yaml`, as raw strings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.config import PROJECT_ROOT


@dataclass(frozen=True)
class ConfigKey:
    """One key of the typed config schema in `Pulumi.yaml`."""

    name: str
    type: str
    default: Any
    description: str
    secret: bool


def read_project(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The parsed `Pulumi.yaml`."""
    data = yaml.safe_load((root / "Pulumi.yaml").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        msg = f"{root / 'Pulumi.yaml'} is not a YAML mapping."
        raise ValueError(msg)
    return data


def project_name(root: Path = PROJECT_ROOT) -> str:
    """The Pulumi project name, which is also the config namespace."""
    return str(read_project(root)["name"])


def config_schema(root: Path = PROJECT_ROOT) -> list[ConfigKey]:
    """The project's own typed config keys (not `pulumi:` settings)."""
    keys = []
    for name, spec in read_project(root).get("config", {}).items():
        if ":" in name:
            continue
        keys.append(
            ConfigKey(
                name=name,
                type=spec["type"],
                default=spec.get("default"),
                description=spec.get("description", ""),
                secret=bool(spec.get("secret", False)),
            )
        )
    return keys


def stack_config(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    root: Path = PROJECT_ROOT,
) -> dict[str, str]:
    """Fully qualified config (`project:key` -> raw string) for one stack."""
    project = project_name(root)
    values: dict[str, Any] = {
        f"{project}:{key.name}": key.default for key in config_schema(root)
    }
    stack_file = root / read_project(root).get("stackConfigDir", ".")
    stack_file = stack_file / f"Pulumi.{stack}.yaml"
    if stack_file.exists():
        data = yaml.safe_load(stack_file.read_text(encoding="utf-8")) or {}
        values.update(data.get("config", {}))
    for key, value in (overrides or {}).items():
        values[key if ":" in key else f"{project}:{key}"] = value
    return {key: _to_raw(value) for key, value in values.items()}


def _to_raw(value: Any) -> str:
    # Pulumi stores scalars as strings and structured values as JSON.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)
