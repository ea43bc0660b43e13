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

    classifier: Literal["learned", "rules", "triton"] = "learned"
    classifier_artifact: Path | None = Field(
        default=None,
        description="Learned-classifier artifact; the bundled one when unset.",
    )
    triton_url: str = "127.0.0.1:8001"
    triton_protocol: Literal["grpc", "http"] = "grpc"
    triton_model: str = "task_classifier"
    triton_timeout_ms: float = Field(default=50.0, gt=0)
    triton_backoff_s: float = Field(
        default=1.0,
        gt=0,
        description="Pause before retrying Triton after a failed call; doubles "
        "with each consecutive failure up to `triton_backoff_max_s`.",
    )
    triton_backoff_max_s: float = Field(default=30.0, gt=0)

    cache_backend: Literal["memory", "redis", "dynamodb", "none"] = "memory"
    cache_ttl_s: int = Field(default=3600, ge=1)
    cache_max_entries: int = Field(default=10_000, ge=1)
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_auth_token: SecretStr | None = None
    dynamodb_table: str = "llm-router-decisions"
    dynamodb_region: str | None = None
    dynamodb_endpoint_url: str | None = None
    cache_timeout_ms: float = Field(
        default=100.0,
        gt=0,
        description="Bound on each remote decision-cache call; a slower call is "
        "a failure and the turn is classified without the cache.",
    )
    cache_retry_s: float = Field(
        default=5.0,
        ge=0,
        description="After a remote cache fails, skip it for this long.",
    )
    redis_tls_ca_file: Path | None = Field(
        default=None,
        description="CA bundle for `rediss://`; the system CAs when unset "
        "(enough for ElastiCache).",
    )

    emf_enabled: bool = False
    emf_namespace: str = "LLMRouter"

    tier_targets: dict[str, str] = Field(
        default_factory=dict,
        description="Per-tier invoke ids (e.g. inference-profile ARNs) set by a stack.",
    )

    api_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated inbound API keys; auth is off when no key "
        "is configured here or in `api_keys_secret_arn`.",
    )
    api_keys_secret_arn: str | None = Field(
        default=None,
        description="Secrets Manager secret holding the API keys, read once at start.",
    )
    aws_region: str | None = None
    rate_limit_requests_per_min: int | None = Field(default=None, ge=1)
    rate_limit_tokens_per_min: int | None = Field(default=None, ge=1)
    limits_backend: Literal["memory", "redis"] = "memory"
    budgets_backend: Literal["memory", "redis", "dynamodb"] = "memory"
    budgets_dynamodb_table: str = "llm-router-budgets"
    budgets_refresh_s: float = Field(default=1.0, ge=0)
    store_timeout_s: float = Field(
        default=0.25,
        gt=0,
        description="Timeout of each Redis/DynamoDB call for limits and budgets.",
    )

    retries_per_tier: int = Field(default=1, ge=0, le=10)
    retry_budget_s: float = Field(
        default=10.0,
        ge=0,
        description="Retries (and their waits) stop once a request has spent this "
        "long on failed attempts; fallbacks are still tried.",
    )
    retry_backoff_s: float = Field(default=0.1, ge=0)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_open_s: float = Field(default=30.0, gt=0)

    reload_watch: bool = Field(
        default=True, description="Reload the policy file when it changes."
    )
    shutdown_grace_s: float = Field(
        default=30.0,
        ge=0,
        description="How long shutdown waits for open requests and streams.",
    )

    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_messages: int = Field(default=512, ge=1)
    max_prompt_tokens: int = Field(default=200_000, ge=1)
    feedback_window_s: int = Field(default=3600, ge=1)
