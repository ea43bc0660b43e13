"""The `llm-router` command line."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from llm_router.errors import ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except ConfigError as exc:
        print(f"llm-router: {exc}", file=sys.stderr)
        return 2
    return status


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-router",
        description="Route each chat turn to the cheapest capable model tier.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP router")
    _add_config(serve)
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8080)")
    serve.set_defaults(run=_serve)

    route = commands.add_parser("route", help="print the decision for a prompt")
    _add_config(route)
    route.add_argument("prompt", help="the user message to route")
    route.add_argument("--model", default="auto", help="auto, a tier or a model")
    route.set_defaults(run=_route)

    check = commands.add_parser("check-config", help="validate a policy file")
    check.add_argument("file", type=Path, help="policy YAML")
    check.set_defaults(run=_check_config)

    classify = commands.add_parser(
        "classify", help="classify JSON lines with `id` and `text`"
    )
    _add_config(classify)
    classify.add_argument("--jsonl", type=Path, required=True, help="input file")
    classify.set_defaults(run=_classify)

    from llm_router.evaluation.commands import add_commands

    add_commands(commands, _add_config)
    return parser


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help="policy YAML (default: the embedded policy)"
    )


def _settings(args: argparse.Namespace, **overrides: object) -> object:
    from llm_router.settings import Settings

    values = {k: v for k, v in overrides.items() if v is not None}
    if getattr(args, "config", None) is not None:
        values["policy_file"] = args.config
    return Settings(**values)  # type: ignore[arg-type]


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from llm_router.app import create_app
    from llm_router.settings import Settings
    from llm_router.telemetry.logs import configure_logging

    settings = _settings(args, host=args.host, port=args.port)
    assert isinstance(settings, Settings)
    configure_logging(settings.log_level, access_log=settings.access_log)
    app = create_app(settings)
    _tune_gc()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        # Open requests and streams get this long to finish after SIGTERM.
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_s)),
    )
    return 0


def _tune_gc() -> None:
    """Keep start-up objects out of the collector's way on the request path.

    Measured in docs/benchmarks.md: with Python's default thresholds a router
    under load ran 10-19 full collections in 8 s, each walking the ~60,000
    objects of FastAPI, the policy and the classifier, 45-64 ms with the event
    loop stopped. Freezing what start-up built and collecting the young
    generation less often cut that to 2. Reference counting still frees
    everything at once; only cyclic garbage waits longer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def _route(args: argparse.Namespace) -> int:
    from llm_router.service import RouterService
    from llm_router.settings import Settings

    settings = _settings(args, cache_backend="none")
    assert isinstance(settings, Settings)
    service = RouterService.from_settings(settings)
    messages = [{"role": "user", "content": args.prompt}]
    decision = asyncio.run(service.router.decide(messages, args.model))
    print(orjson.dumps(decision.to_json(), option=orjson.OPT_INDENT_2).decode())
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from llm_router.policy.loader import load_policy

    policy = load_policy(args.file)
    print(
        f"{args.file}: valid policy {policy.name!r} with tiers "
        f"{', '.join(policy.tier_names)}"
    )
    return 0


def _classify(args: argparse.Namespace) -> int:
    from llm_router.classifiers.base import Turn
    from llm_router.classifiers.factory import build_classifier
    from llm_router.policy.loader import load_default_policy, load_policy
    from llm_router.routing.decision import choose_tier
    from llm_router.settings import Settings

    settings = _settings(args)
    assert isinstance(settings, Settings)
    policy = (
        load_policy(settings.policy_file)
        if settings.policy_file
        else load_default_policy()
    )
    classifier = build_classifier(settings)
    rows = _read_jsonl(args.jsonl)
    turns = [Turn(text=row["text"], context=row.get("context") or "") for row in rows]
    out = sys.stdout.buffer
    for row, result in zip(rows, classifier.classify_many(turns), strict=True):
        tier, _ = choose_tier(policy, result)
        line = {
            "id": row["id"],
            "task": result.task,
            "complexity": round(result.complexity, 6),
            "tier": tier,
            "confidence": round(result.confidence, 6),
        }
        out.write(orjson.dumps(line) + b"\n")
    out.flush()
    return 0


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        msg = f"Cannot read {str(path)!r}: {exc.strerror}."
        raise ConfigError(msg) from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            msg = f"{path}:{number} is not valid JSON."
            raise ConfigError(msg) from None
        if (
            not isinstance(row, dict)
            or "id" not in row
            or not isinstance(row.get("text"), str)
        ):
            msg = (
                f"{path}:{number} needs a JSON object with `id` and a string "
                "`text` (optional `context`)."
            )
            raise ConfigError(msg)
        rows.append(row)
    return rows
