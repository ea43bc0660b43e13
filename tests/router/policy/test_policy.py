"""Policy loading: valid files, env expansion, and errors that name the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import openai_policy, write_policy
from llm_router.classifiers.base import TASKS, Classification
from llm_router.errors import ConfigError
from llm_router.policy import load_default_policy, load_policy, parse_policy
from llm_router.routing.decision import choose_tier

SIMULATED = """
routing:
  tasks: {code_generation: large, rewrite: small}
providers:
  sim: {type: simulated}
tiers:
  small: {provider: sim, model: m-small, input_usd_per_million: 0.1,
          output_usd_per_million: 0.4}
  large: {provider: sim, model: m-large, input_usd_per_million: 3,
          output_usd_per_million: 15}
"""


def _result(task: str, complexity: float, confidence: float = 0.9) -> Classification:
    rest = (1 - confidence) / (len(TASKS) - 1)
    probs = tuple(confidence if t == task else rest for t in TASKS)
    return Classification(probabilities=probs, complexity=complexity)


def test_embedded_default_has_three_simulated_tiers_cheapest_first() -> None:
    policy = load_default_policy()

    assert policy.tier_names == ["small", "medium", "large"]
    assert policy.default_tier == "small"
    assert {p.type for p in policy.providers.values()} == {"simulated"}
    assert set(policy.task_tiers) == set(TASKS)


@pytest.mark.parametrize(
    ("task", "complexity", "tier"),
    [
        ("code_generation", 0.5, "large"),
        ("code_generation", 0.32, "medium"),
        ("code_generation", 0.05, "small"),
        ("open_qa", 0.5, "medium"),
        ("open_qa", 0.9, "large"),
        ("rewrite", 0.5, "small"),
        ("rewrite", 0.9, "medium"),
    ],
)
def test_complexity_thresholds_move_the_task_tier(
    task: str, complexity: float, tier: str
) -> None:
    chosen, reason = choose_tier(load_default_policy(), _result(task, complexity))

    assert chosen == tier, reason


def test_unsure_turn_goes_to_the_default_tier() -> None:
    chosen, reason = choose_tier(
        load_default_policy(), _result("code_generation", 0.5, confidence=0.1)
    )

    assert chosen == "small"
    assert "min_confidence" in reason


def test_env_references_expand_and_secrets_stay_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UPSTREAM_KEY", "sk-very-secret")
    text = openai_policy("http://127.0.0.1:9").replace(
        "type: openai\n", "type: openai\n    api_key: ${UPSTREAM_KEY}\n"
    )

    policy = parse_policy(text)

    provider = policy.providers["upstream"]
    assert provider.type == "openai"
    assert provider.api_key is not None
    assert provider.api_key.get_secret_value() == "sk-very-secret"
    assert "sk-very-secret" not in repr(policy)
    assert "sk-very-secret" not in policy.model_dump_json()


@pytest.mark.parametrize(
    "secret_line", ["api_key: 123456789", "headers: {x-api-key: 123456789}"]
)
def test_an_invalid_secret_is_named_but_never_shown(secret_line: str) -> None:
    text = openai_policy("http://127.0.0.1:9").replace(
        "type: openai\n", f"type: openai\n    {secret_line}\n"
    )

    with pytest.raises(ConfigError) as caught:
        parse_policy(text)

    assert "providers.upstream." in str(caught.value)
    assert "<secret>" in str(caught.value)
    assert "123456789" not in str(caught.value)


def test_missing_env_reference_names_the_variable_and_the_key() -> None:
    text = SIMULATED.replace("model: m-small", 'model: "${NOT_SET_ANYWHERE_42}"')

    with pytest.raises(ConfigError) as caught:
        parse_policy(text)

    assert "NOT_SET_ANYWHERE_42" in str(caught.value)
    assert "tiers.small.model" in str(caught.value)


def test_env_reference_default_is_used_when_unset() -> None:
    text = SIMULATED.replace("model: m-small", 'model: "${NOT_SET_ANYWHERE_42:-m-x}"')

    assert parse_policy(text).tiers["small"].model == "m-x"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t: t.replace("code_generation: large", "code_generation: xl"),
            "Unknown tier 'xl' in routing.tasks.code_generation. "
            "Known tiers: small, large.",
        ),
        (
            lambda t: t.replace("code_generation: large", "coding: large"),
            "Unknown task 'coding' in routing.tasks. Known tasks: open_qa",
        ),
        (
            lambda t: t.replace(
                "provider: sim, model: m-large", "provider: x, model: m"
            ),
            "Unknown provider 'x' in tiers.large.provider. Known providers: sim.",
        ),
        (
            lambda t: t.replace("type: simulated", "type: vertex"),
            "providers.sim: Input tag 'vertex' found using 'type' does not match "
            "any of the expected tags: 'simulated', 'openai', 'bedrock'",
        ),
        (
            lambda t: t.replace(
                "input_usd_per_million: 0.1", "input_usd_per_million: -1"
            ),
            "tiers.small.input_usd_per_million = -1: Input should be greater than "
            "or equal to 0.",
        ),
        (
            lambda t: t.replace(
                "routing:\n", "routing:\n  complexity: {step_down_below: [0.8]}\n"
            ),
            "routing.complexity.step_down_below must stay below step_up_above",
        ),
        (
            lambda t: t.replace("routing:\n", "routing:\n  default_tier: medium\n"),
            "Unknown tier 'medium' in routing.default_tier. Known tiers: small, large.",
        ),
        (
            lambda t: t.replace("model: m-large", "model: m-large, fallback: [xl]"),
            "Bad fallback tier 'xl' in tiers.large.fallback.",
        ),
        (lambda t: t + "colour: blue\n", "colour: Extra inputs are not permitted."),
        (lambda t: "tiers: [", "is not valid YAML"),
        (lambda t: "- a\n- b\n", "must be a YAML mapping"),
    ],
)
def test_invalid_policy_names_the_key_the_value_and_the_options(
    edit: object, expected: str
) -> None:
    assert callable(edit)

    with pytest.raises(ConfigError) as caught:
        parse_policy(edit(SIMULATED), source="p.yaml")

    assert expected in str(caught.value), str(caught.value)


def test_default_task_map_needs_the_default_tier_names() -> None:
    text = SIMULATED.replace(
        "routing:\n  tasks: {code_generation: large, rewrite: small}\n", ""
    )

    with pytest.raises(ConfigError, match=r"routing\.tasks is not set"):
        parse_policy(text)


def test_bedrock_tier_needs_a_region() -> None:
    text = SIMULATED.replace("sim: {type: simulated}", "sim: {type: bedrock}")

    with pytest.raises(ConfigError, match="neither the tier nor the provider sets"):
        parse_policy(text)


def test_unreadable_policy_file_says_which_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Cannot read policy file '.*nope\.yaml'"):
        load_policy(tmp_path / "nope.yaml")


def test_policy_file_round_trips(tmp_path: Path) -> None:
    path = write_policy(tmp_path, SIMULATED)

    policy = load_policy(path)

    assert policy.tiers["large"].cost_usd(1_000_000, 1_000_000) == 18.0
