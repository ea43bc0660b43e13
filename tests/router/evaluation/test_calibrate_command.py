"""`llm-router calibrate`: thresholds that hit a target tier mix, written back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_router.classifiers.base import Turn
from llm_router.classifiers.learned import LearnedClassifier
from llm_router.cli import main
from llm_router.errors import ConfigError
from llm_router.evaluation.calibrate import calibrate, parse_target, write_thresholds
from llm_router.policy.loader import load_default_policy, load_policy
from llm_router.policy.schema import ComplexityRules
from llm_router.routing.decision import choose_tier

TRAFFIC = Path(__file__).parent / "labelled.jsonl"


def _mix(policy_path: Path) -> dict[str, float]:
    policy = load_policy(policy_path)
    rows = [json.loads(line) for line in TRAFFIC.read_text().splitlines()]
    classifier = LearnedClassifier.from_artifact()
    results = classifier.classify_many(
        [Turn(r["text"], r.get("context", "")) for r in rows]
    )
    tiers = [choose_tier(policy, result)[0] for result in results]
    return {tier: tiers.count(tier) / len(tiers) for tier in policy.tier_names}


@pytest.mark.parametrize(
    "target",
    [
        {"small": 0.5, "medium": 0.3, "large": 0.2},
        {"small": 0.2, "medium": 0.3, "large": 0.5},
    ],
)
def test_calibrated_policy_routes_the_traffic_to_the_target_mix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: dict[str, float]
) -> None:
    output = tmp_path / "policy.yaml"
    spec = ",".join(f"{tier}={share}" for tier, share in target.items())

    status = main(
        [
            "calibrate",
            "--jsonl",
            str(TRAFFIC),
            "--target",
            spec,
            "--output",
            str(output),
        ]
    )

    err = capsys.readouterr().err
    assert status == 0, err
    mix = _mix(output)
    for tier, share in target.items():
        assert abs(mix[tier] - share) <= 0.12, (tier, mix, err)
    assert f"got {mix['small']:.1%}" in err
    text = output.read_text()
    assert "# The embedded default policy" in text, "comments should survive"


def test_calibrate_prints_the_policy_without_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(
        ["calibrate", "--jsonl", str(TRAFFIC), "--target", "small=1,medium=0,large=0"]
    )

    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "step_down_below:" in captured.out
    assert "small      target 100.0%  got" in captured.err


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("small=0.5,medium=0.3", "sum to 0.800"),
        ("small=0.5,huge=0.5", "Unknown tier 'huge'"),
        ("small:1", "Bad target 'small:1'"),
        ("small=-1,large=2", "Bad target 'small=-1'"),
    ],
)
def test_bad_targets_are_rejected(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_target(spec, ["small", "medium", "large"])


def test_calibrate_needs_traffic() -> None:
    target = {"small": 1.0, "medium": 0.0, "large": 0.0}
    with pytest.raises(ConfigError, match="No traffic"):
        calibrate(load_default_policy(), [], target)


def test_block_style_lists_are_rewritten_as_yaml(tmp_path: Path) -> None:
    text = (
        "version: 1\nproviders:\n  s:\n    type: simulated\ntiers:\n"
        "  small: {provider: s, model: a, input_usd_per_million: 1, "
        "output_usd_per_million: 1}\n"
        "routing:\n  tasks: {}\n  complexity:\n    step_down_below:\n      - 0.2\n"
    )
    rules = ComplexityRules(step_down_below=(0.4,), step_up_above=(0.8,))

    updated = write_thresholds(text, rules)

    path = tmp_path / "p.yaml"
    path.write_text(updated)
    assert load_policy(path).routing.complexity == rules
