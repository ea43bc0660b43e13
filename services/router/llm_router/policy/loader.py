"""Load a policy file: read YAML, expand `${VAR}` secrets, validate."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from llm_router.errors import ConfigError
from llm_router.policy.schema import Policy

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_policy(path: str | Path) -> Policy:
    """Read and validate the policy file at `path`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"Cannot read policy file {str(path)!r}: {exc.strerror}."
        raise ConfigError(msg) from None
    return parse_policy(text, source=str(path))


def load_default_policy() -> Policy:
    """The embedded default: three simulated tiers, no cloud account needed."""
    text = resources.files("llm_router.policy").joinpath("default.yaml")
    return parse_policy(text.read_text(encoding="utf-8"), source="embedded default")


def parse_policy(
    text: str, *, source: str = "policy", environ: Mapping[str, str] | None = None
) -> Policy:
    """Validate policy YAML text; errors name the key and the accepted values.

    `${NAME}` references read `environ` (the process environment by default).
    """
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        msg = f"{source} is not valid YAML: {exc}"
        raise ConfigError(msg) from None
    if not isinstance(raw, dict):
        msg = f"{source} must be a YAML mapping with `providers` and `tiers`."
        raise ConfigError(msg)

    expanded = _expand_env(
        raw, path="", environ=os.environ if environ is None else environ
    )
    try:
        return Policy.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def policy_digest(text_or_policy: str | Policy) -> str:
    """A short stable version id for a policy (used in decision-cache keys)."""
    if isinstance(text_or_policy, Policy):
        text_or_policy = text_or_policy.model_dump_json()
    return hashlib.sha256(text_or_policy.encode()).hexdigest()[:16]


def _expand_env(value: Any, *, path: str, environ: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            key: _expand_env(
                item, path=f"{path}.{key}" if path else str(key), environ=environ
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            _expand_env(item, path=f"{path}[{i}]", environ=environ)
            for i, item in enumerate(value)
        ]
    if isinstance(value, str) and "${" in value:
        return _ENV_REF.sub(lambda match: _lookup(match, path, environ), value)
    return value


def _lookup(match: re.Match[str], path: str, environ: Mapping[str, str]) -> str:
    name, default = match.group(1), match.group(2)
    found = environ.get(name)
    if found is not None:
        return found
    if default is not None:
        return default
    msg = (
        f"Environment variable {name!r} referenced at {path} is not set. "
        f"Set it, or write ${{{name}:-default}} to give a default."
    )
    raise ConfigError(msg)


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"{source} is not a valid policy:"]
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if not location:
            lines.append(f"- {message}")
            continue
        if error["type"] in {"missing", "extra_forbidden"}:
            lines.append(f"- {location}: {message}.")
            continue
        if "input" in error and not isinstance(error["input"], dict | list):
            secret = "api_key" in location or ".headers." in location
            shown = "<secret>" if secret else repr(error["input"])
            lines.append(f"- {location} = {shown}: {message}.")
        else:
            lines.append(f"- {location}: {message}")
    return "\n".join(lines)
