"""The policy file format.

Tiers are listed cheapest first; that order is what "one tier down" and "one
tier up" mean. Every error names the key, the bad value and the valid options.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    model_validator,
)

from llm_router.classifiers.base import TASKS

DEFAULT_TASK_TIERS: dict[str, str] = {
    "code_generation": "large",
    "math_reasoning": "large",
    "open_qa": "medium",
    "closed_qa": "medium",
    "text_generation": "medium",
    "chatbot": "medium",
    "brainstorming": "medium",
    "rewrite": "small",
    "summarization": "small",
    "classification": "small",
    "extraction": "small",
    "other": "small",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimulatedProvider(_Strict):
    """Built-in offline provider: deterministic completions, no network."""

    type: Literal["simulated"]
    latency_ms: float = Field(default=0.0, ge=0)
    chunk_delay_ms: float = Field(default=0.0, ge=0)


class OpenAIProvider(_Strict):
    """Any OpenAI-compatible endpoint: NIM, vLLM, OpenAI."""

    type: Literal["openai"]
    base_url: str = Field(pattern=r"^https?://")
    api_key: SecretStr | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    max_connections: int = Field(default=512, ge=1)


class BedrockProvider(_Strict):
    """Amazon Bedrock through Converse and ConverseStream."""

    type: Literal["bedrock"]
    region: str | None = None
    endpoint_url: str | None = None
    max_connections: int = Field(default=128, ge=1)


ProviderConfig = Annotated[
    SimulatedProvider | OpenAIProvider | BedrockProvider,
    Field(discriminator="type"),
]


class Timeouts(_Strict):
    """Upstream timeouts in seconds."""

    connect: float = Field(default=3.0, gt=0)
    first_byte: float = Field(default=60.0, gt=0)
    total: float = Field(default=300.0, gt=0)


class TierConfig(_Strict):
    """One model tier."""

    provider: str
    model: str = Field(min_length=1)
    target: str | None = Field(
        default=None,
        description="What the provider invokes (e.g. an inference-profile ARN); "
        "defaults to `model`.",
    )
    region: str | None = None
    input_usd_per_million: float = Field(ge=0)
    output_usd_per_million: float = Field(ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    fallback: tuple[str, ...] = ()
    daily_budget_usd: float | None = Field(default=None, gt=0)
    on_budget_exhausted: Literal["downgrade", "reject"] = "downgrade"

    @property
    def invoke_target(self) -> str:
        """The id the provider is called with."""
        return self.target or self.model

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        """The price of one call at this tier's configured prices."""
        return (
            input_tokens * self.input_usd_per_million
            + output_tokens * self.output_usd_per_million
        ) / 1_000_000


class ComplexityRules(_Strict):
    """Each threshold the score falls below (or rises above) moves one tier."""

    # The same values as policy/default.yaml; see docs/classifier.md.
    step_down_below: tuple[float, ...] = (0.37, 0.27)
    step_up_above: tuple[float, ...] = (0.6,)

    @model_validator(mode="after")
    def _check_order(self) -> ComplexityRules:
        for key, values in (
            ("step_down_below", self.step_down_below),
            ("step_up_above", self.step_up_above),
        ):
            for value in values:
                if not 0.0 <= value <= 1.0:
                    msg = (
                        f"routing.complexity.{key} has {value!r}; "
                        "thresholds are complexity scores in [0, 1]."
                    )
                    raise ValueError(msg)
        if (
            self.step_down_below
            and self.step_up_above
            and max(self.step_down_below) >= min(self.step_up_above)
        ):
            msg = (
                "routing.complexity.step_down_below must stay below "
                f"step_up_above; got {list(self.step_down_below)} and "
                f"{list(self.step_up_above)}."
            )
            raise ValueError(msg)
        return self

    def shift(self, complexity: float) -> int:
        """How many tiers to move for this score (negative is down)."""
        down = sum(complexity < t for t in self.step_down_below)
        up = sum(complexity > t for t in self.step_up_above)
        return up - down


class RoutingRules(_Strict):
    """How a classification becomes a tier."""

    tasks: dict[str, str] | None = Field(
        default=None,
        description="Task -> base tier. Unset: the default map (needs tiers "
        "small, medium and large). Unlisted tasks use the default tier.",
    )
    complexity: ComplexityRules = Field(default_factory=ComplexityRules)
    min_confidence: float = Field(default=0.2, ge=0, le=1)
    default_tier: str | None = Field(
        default=None,
        description="Where unsure turns go; defaults to the cheapest tier.",
    )


class Policy(_Strict):
    """A complete routing policy."""

    version: Literal[1] = 1
    name: str = "policy"
    providers: dict[str, ProviderConfig]
    tiers: dict[str, TierConfig] = Field(min_length=1)
    routing: RoutingRules = Field(default_factory=RoutingRules)

    @model_validator(mode="after")
    def _check_references(self) -> Policy:
        tiers = list(self.tiers)
        known_tiers = ", ".join(tiers)
        for name, tier in self.tiers.items():
            if tier.provider not in self.providers:
                msg = (
                    f"Unknown provider {tier.provider!r} in tiers.{name}.provider. "
                    f"Known providers: {', '.join(self.providers) or 'none'}."
                )
                raise ValueError(msg)
            for target in tier.fallback:
                if target not in self.tiers or target == name:
                    msg = (
                        f"Bad fallback tier {target!r} in tiers.{name}.fallback. "
                        f"Use other tiers of this policy: {known_tiers}."
                    )
                    raise ValueError(msg)
            provider = self.providers[tier.provider]
            if isinstance(provider, BedrockProvider) and not (
                tier.region or provider.region
            ):
                msg = (
                    f"tiers.{name} uses Bedrock provider {tier.provider!r} but "
                    "neither the tier nor the provider sets `region`."
                )
                raise ValueError(msg)
        if self.routing.tasks is None and not set(DEFAULT_TASK_TIERS.values()) <= set(
            tiers
        ):
            msg = (
                "routing.tasks is not set, and the default task map needs tiers "
                f"small, medium and large; this policy has {known_tiers}. "
                "Set routing.tasks to map each task to one of them."
            )
            raise ValueError(msg)
        for task, tier_name in self.task_tiers.items():
            if task not in TASKS:
                msg = (
                    f"Unknown task {task!r} in routing.tasks. "
                    f"Known tasks: {', '.join(TASKS)}."
                )
                raise ValueError(msg)
            if tier_name not in self.tiers:
                msg = (
                    f"Unknown tier {tier_name!r} in routing.tasks.{task}. "
                    f"Known tiers: {known_tiers}."
                )
                raise ValueError(msg)
        default = self.routing.default_tier
        if default is not None and default not in self.tiers:
            msg = (
                f"Unknown tier {default!r} in routing.default_tier. "
                f"Known tiers: {known_tiers}."
            )
            raise ValueError(msg)
        models = [tier.model for tier in self.tiers.values()]
        clash = sorted(set(models) & set(tiers))
        if clash:
            msg = (
                f"Model id {clash[0]!r} is also a tier name; "
                "model ids and tier names must differ so `model` is unambiguous."
            )
            raise ValueError(msg)
        return self

    @property
    def task_tiers(self) -> dict[str, str]:
        """Task -> base tier, with the default map when none is configured."""
        if self.routing.tasks is None:
            return DEFAULT_TASK_TIERS
        return self.routing.tasks

    @property
    def tier_names(self) -> list[str]:
        """Tier names, cheapest first."""
        return list(self.tiers)

    @property
    def default_tier(self) -> str:
        """The tier for unsure turns and unmapped tasks."""
        return self.routing.default_tier or self.tier_names[0]

    def tier_for_model(self, model: str) -> str | None:
        """The tier serving a concrete model id, if any."""
        for name, tier in self.tiers.items():
            if model in (tier.model, tier.target):
                return name
        return None
