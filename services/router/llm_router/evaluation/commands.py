"""The `llm-router eval` and `llm-router calibrate` subcommands.

Only argparse is imported here; numpy, the classifier and matplotlib load when
a command runs, so `llm-router --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llm_router.errors import ConfigError


def add_commands(
    commands: Any, add_config: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Register `eval` and `calibrate` on the CLI's subparsers."""
    evaluate = commands.add_parser(
        "eval",
        help="score the classifier and policy on a labelled JSON-lines file",
        description="Print accuracy, macro-F1, per-task scores, the confusion "
        "matrix, the tier mix and the estimated cost against sending every "
        "prompt to the largest tier; save PNG plots.",
    )
    add_config(evaluate)
    evaluate.add_argument(
        "--jsonl", type=Path, required=True, help="rows with id, text and task"
    )
    evaluate.add_argument(
        "--outcomes",
        action="store_true",
        help="also report strong-call share against quality from the "
        "weak_correct/strong_correct columns",
    )
    evaluate.add_argument(
        "--plots",
        type=Path,
        default=Path("llm-router-eval"),
        help="directory for confusion.png and cost_quality.png "
        "(default ./llm-router-eval)",
    )
    evaluate.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    evaluate.add_argument(
        "--classifier", choices=("learned", "rules"), help="override the setting"
    )
    evaluate.set_defaults(run=run_eval)

    calibrate = commands.add_parser(
        "calibrate",
        help="set complexity thresholds for a target tier mix on your traffic",
        description="Classify the traffic, search the complexity thresholds "
        "whose tier mix is closest to --target, and write the policy with them.",
    )
    add_config(calibrate)
    calibrate.add_argument(
        "--jsonl", type=Path, required=True, help="traffic: rows with id and text"
    )
    calibrate.add_argument(
        "--target",
        required=True,
        help="tier shares, e.g. small=0.5,medium=0.3,large=0.2",
    )
    calibrate.add_argument(
        "--output",
        type=Path,
        help="write the calibrated policy here (default: print it to stdout)",
    )
    calibrate.add_argument(
        "--classifier", choices=("learned", "rules"), help="override the setting"
    )
    calibrate.set_defaults(run=run_calibrate)


def _load(args: argparse.Namespace) -> tuple[Any, Any, list[dict[str, Any]]]:
    from llm_router.cli import _read_jsonl
    from llm_router.policy.loader import load_default_policy, load_policy
    from llm_router.settings import Settings

    values: dict[str, Any] = {}
    if args.classifier:
        values["classifier"] = args.classifier
    settings = Settings(**values)
    policy = load_policy(args.config) if args.config else load_default_policy()
    rows = _read_jsonl(args.jsonl)
    return settings, policy, rows if rows else _no_rows(args.jsonl)


def _no_rows(path: Path) -> list[dict[str, Any]]:
    msg = f"{str(path)!r} has no rows; give it JSON lines with `id` and `text`."
    raise ConfigError(msg)


def run_eval(args: argparse.Namespace) -> int:
    """`llm-router eval`: print the report and save the plots."""
    from llm_router.classifiers.factory import build_classifier
    from llm_router.evaluation.report import evaluate, format_report, save_plots

    settings, policy, rows = _load(args)
    classifier = build_classifier(settings)
    evaluation = evaluate(rows, classifier, policy, outcomes=args.outcomes)
    print(f"classifier: {classifier.name}")
    print(format_report(evaluation, policy))
    if not args.no_plots:
        for path in save_plots(evaluation, args.plots):
            print(f"saved {path}")
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    """`llm-router calibrate`: write the policy with calibrated thresholds."""
    from importlib import resources

    from llm_router.classifiers.base import Turn
    from llm_router.classifiers.factory import build_classifier
    from llm_router.evaluation.calibrate import (
        calibrate,
        parse_target,
        write_thresholds,
    )
    from llm_router.policy.loader import parse_policy

    settings, policy, rows = _load(args)
    target = parse_target(args.target, policy.tier_names)
    classifier = build_classifier(settings)
    results = classifier.classify_many(
        [Turn(row["text"], row.get("context") or "") for row in rows]
    )
    found = calibrate(policy, results, target)

    if args.config:
        text = Path(args.config).read_text(encoding="utf-8")
    else:
        text = (
            resources.files("llm_router.policy")
            .joinpath("default.yaml")
            .read_text(encoding="utf-8")
        )
    updated = write_thresholds(text, found.rules)
    parse_policy(updated, source="the calibrated policy")
    report = (
        f"calibrated on {len(rows)} rows with classifier {classifier.name}: "
        f"step_down_below={list(found.rules.step_down_below)} "
        f"step_up_above={list(found.rules.step_up_above)}\n"
        + "\n".join(
            f"  {tier:<10} target {target[tier]:.1%}  got {found.mix[tier]:.1%}"
            for tier in policy.tier_names
        )
    )
    print(report, file=sys.stderr)
    if args.output:
        args.output.write_text(updated, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(updated)
    return 0
