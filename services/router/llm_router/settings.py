"""The router's one settings object, read from `LLM_ROUTER_*` variables.

The policy file says how to route; settings say how this process runs: where
the policy is, which classifier and cache to use, limits and telemetry. Stacks
set these through the environment, so one policy serves every stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process settings; every field is `LLM_ROUTER_<NAME>` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="LLM_ROUTER_", extra="ignore", frozen=True
    )

    policy_file: Path | None = Field(
        default=None, description="Policy YAML; the embedded default when unset."
    )
    policy: str | None = Field(
        default=None,
        description="Policy YAML text, for platforms where a stack passes the "
        "policy inline (Lambda, ECS); wins over `policy_file`.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    access_log: bool = True

    classifier: Literal["learned", "rules", "triton"] = "rules"
    classifier_artifact: Path | None = Field(
        default=None,
        description="Learned-classifier artifact; the bundled one when unset.",
    )
    triton_url: str = "127.0.0.1:8001"
    triton_protocol: Literal["grpc", "http"] = "grpc"
    triton_model: str = "task_classifier"
    triton_timeout_ms: float = Field(default=50.0, gt=0)

    cache_backend: Literal["memory", "redis", "dynamodb", "none"] = "memory"
    cache_ttl_s: int = Field(default=3600, ge=1)
    cache_max_entries: int = Field(default=10_000, ge=1)
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_auth_token: SecretStr | None = None
    dynamodb_table: str = "llm-router-decisions"
    dynamodb_region: str | None = None
    dynamodb_endpoint_url: str | None = None

    emf_enabled: bool = False
    emf_namespace: str = "LLMRouter"

    tier_targets: dict[str, str] = Field(
        default_factory=dict,
        description="Per-tier invoke ids (e.g. inference-profile ARNs) set by a stack.",
    )

    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_messages: int = Field(default=512, ge=1)
    max_prompt_tokens: int = Field(default=200_000, ge=1)
    feedback_window_s: int = Field(default=3600, ge=1)
