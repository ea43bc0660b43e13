"""Run the side-by-side benchmark: direct, llm-router and LiteLLM's proxy.

    uv run python -m bench.run          # full run, rewrites docs/benchmarks.md
    uv run python -m bench.run --quick  # smoke run, bench/results/quick/

The full run needs `wrk` (Debian package) and creates LiteLLM's own virtualenv
in `bench/.venv-litellm` if it is absent. The quick run uses the aiohttp load
generator only and skips LiteLLM when its virtualenv is absent, saying so.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench import decision, loadgen, processes, report
from bench.processes import ROOT, Server

CHAT_PATH = "/v1/chat/completions"


@dataclass
class Plan:
    """What one run measures and for how long."""

    quick: bool
    delays_ms: tuple[float, ...]
    concurrencies: tuple[int, ...]
    duration_s: float
    ttft_duration_s: float
    warmup_s: float
    decision_samples: int
    use_wrk: bool
    litellm_venv: Path | None
    router_variants: bool
    access_log_variant: bool
    classifier: str
    out_dir: Path
    doc: Path | None
    notes: list[str] = field(default_factory=list)


@dataclass
class Cell:
    """One path at one setting: throughput and latency percentiles in ms."""

    path: str
    delay_ms: float
    stream: bool
    concurrency: int
    tool: str
    requests: int
    errors: int
    rps: float
    p50: float
    p95: float
    p99: float
    ttft_p50: float = math.nan
    ttft_p95: float = math.nan
    ttft_p99: float = math.nan
    # At concurrency 1, the direct path's figures from the same interleaved
    # run: "added" is measured against these, request by request neighbours.
    direct_p50: float = math.nan
    direct_p95: float = math.nan
    direct_p99: float = math.nan
    direct_ttft_p50: float = math.nan
    direct_ttft_p99: float = math.nan
    # CPU time the proxy process spent per request served: a capacity figure
    # the neighbours' load does not move much (direct: the upstream, not set).
    cpu_ms_per_request: float = math.nan
    note: str = ""


def build_plan(args: argparse.Namespace) -> Plan:
    """Turn the command line into a plan, checking the tools it needs."""
    venv = Path(args.litellm_venv)
    notes: list[str] = []
    if args.quick:
        if args.skip_litellm:
            venv_or_none = None
            notes.append("LiteLLM skipped: --skip-litellm was given.")
        elif processes.litellm_ready(venv):
            venv_or_none = venv
        else:
            venv_or_none = None
            notes.append(
                f"LiteLLM skipped: its virtualenv {venv} is absent "
                "(the full run creates it)."
            )
        return Plan(
            quick=True,
            delays_ms=(0.0,),
            concurrencies=(1, 8),
            duration_s=args.duration or 0.4,
            ttft_duration_s=0.0,
            warmup_s=0.2,
            decision_samples=300,
            use_wrk=False,
            litellm_venv=venv_or_none,
            router_variants=False,
            access_log_variant=False,
            classifier=_classifier(args),
            out_dir=Path(args.out or ROOT / "bench" / "results" / "quick"),
            doc=None,
            notes=notes,
        )

    if not loadgen.wrk_available():
        msg = "The full run needs `wrk` on PATH: apt-get install -y wrk (Debian)."
        raise SystemExit(msg)
    if args.skip_litellm:
        venv_or_none = None
        notes.append("LiteLLM skipped: --skip-litellm was given.")
    else:
        print(f"preparing LiteLLM {processes.LITELLM_VERSION} in {venv}", flush=True)
        processes.ensure_litellm(venv)
        venv_or_none = venv
    out_dir = Path(args.out or ROOT / "bench" / "results" / "full")
    return Plan(
        quick=False,
        delays_ms=(0.0, 50.0),
        concurrencies=(1, 32, 128),
        duration_s=args.duration or 8.0,
        ttft_duration_s=4.0,
        warmup_s=1.0,
        decision_samples=20_000,
        use_wrk=True,
        litellm_venv=venv_or_none,
        router_variants=True,
        access_log_variant=args.access_log_variant,
        classifier=_classifier(args),
        out_dir=out_dir,
        doc=None if args.no_doc else ROOT / "docs" / "benchmarks.md",
        notes=notes,
    )


def _classifier(args: argparse.Namespace) -> str:
    """The classifier the router runs: the flag, else the router's own default."""
    if args.classifier:
        return str(args.classifier)
    from llm_router.settings import Settings

    default = Settings(_env_file=None).classifier  # type: ignore[call-arg]
    return str(default)


def measure(plan: Plan) -> dict[str, Any]:
    """Run every path at every setting and the decision benchmark."""
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    load_before = os.getloadavg()
    cells: list[Cell] = []
    memory: list[dict[str, Any]] = []
    servers_info: dict[str, Any] = {}
    for delay in plan.delays_ms:
        print(f"== upstream delay {delay:g} ms", flush=True)
        cells_here, memory_here, info = _measure_delay(plan, delay)
        cells.extend(cells_here)
        memory.extend(memory_here)
        servers_info.update(info)

    print("== decision microbenchmark", flush=True)
    decisions = _measure_decisions(plan)
    return {
        "meta": _describe_run(plan, started, load_before, servers_info),
        "cells": [asdict(c) for c in cells],
        "memory": memory,
        "decision": [asdict(d) for d in decisions],
        "notes": plan.notes,
    }


def _measure_delay(
    plan: Plan, delay: float
) -> tuple[list[Cell], list[dict[str, Any]], dict[str, Any]]:
    workdir = plan.out_dir
    upstream = processes.start_upstream(delay, workdir)
    servers: dict[str, Server] = {}
    try:
        servers["direct"] = upstream
        # The access log goes to a file, as a container's stdout would.
        servers["router"] = processes.start_router(
            upstream.url, workdir, LLM_ROUTER_CLASSIFIER=plan.classifier
        )
        if plan.router_variants and plan.classifier != "rules":
            # The same run with the rules classifier, for scale.
            servers["router (rules)"] = processes.start_router(
                upstream.url,
                workdir,
                name="router-rules",
                LLM_ROUTER_CLASSIFIER="rules",
            )
        if plan.access_log_variant:
            servers["router (no access log)"] = processes.start_router(
                upstream.url,
                workdir,
                name="router-nolog",
                LLM_ROUTER_CLASSIFIER=plan.classifier,
                LLM_ROUTER_ACCESS_LOG="false",
            )
        if plan.router_variants:
            # The router tunes its collector at start-up (cli._tune_gc);
            # bench.gc_probe puts Python's defaults back, to show what that
            # tuning is worth in the same run.
            servers["router (default GC)"] = processes.start_router(
                upstream.url,
                workdir,
                name="router-default-gc",
                module="bench.gc_probe",
                LLM_ROUTER_CLASSIFIER=plan.classifier,
                BENCH_GC_OUT=str(workdir / "router-default-gc.json"),
            )
        if plan.litellm_venv is not None:
            try:
                servers["litellm"] = processes.start_litellm(
                    upstream.url, workdir, plan.litellm_venv
                )
            except RuntimeError as exc:
                # Reported, not fatal: the other paths are still worth having.
                first_line = str(exc).splitlines()[0]
                plan.notes.append(
                    f"LiteLLM failed to start at {delay:g} ms: {first_line}"
                )
                print(plan.notes[-1], flush=True)
        info = _describe_servers(servers)
        idle = {name: processes.rss_mb(s.pid) for name, s in servers.items()}

        cells: list[Cell] = []
        for stream in (False, True):
            script = loadgen.write_wrk_script(
                workdir / f"chat-{'stream' if stream else 'plain'}.lua", stream=stream
            )
            for server in servers.values():
                _warm_up(plan, server.url + CHAT_PATH, stream)
            for concurrency in plan.concurrencies:
                cells.extend(
                    _measure_setting(plan, servers, script, delay, stream, concurrency)
                )

        memory = [
            {
                "path": name,
                "delay_ms": delay,
                "idle_mb": round(idle[name], 1),
                "after_load_mb": round(processes.rss_mb(server.pid), 1),
            }
            for name, server in servers.items()
            if name != "direct"
        ]
        info[f"router access log at {delay:g} ms"] = _count_cache_hits(
            servers["router"].log
        )
    finally:
        for server in reversed(list(servers.values())):
            processes.stop(server)
        processes.stop(upstream)
    return cells, memory, info


def _count_cache_hits(log: Path) -> dict[str, int]:
    """Routed requests in the router's access log, and how many hit the cache.

    Every prompt is unique, so a hit means the load was not what it claims.
    """
    routed = hits = 0
    for line in log.read_bytes().splitlines():
        if not line.startswith(b'{"request_id"'):
            continue
        routed += 1
        hits += bool(orjson.loads(line).get("cache_hit"))
    return {"routed": routed, "cache_hits": hits}


def _warm_up(plan: Plan, url: str, stream: bool) -> None:
    loadgen.run_async(
        loadgen.run_aiohttp(url, concurrency=8, duration_s=plan.warmup_s, stream=stream)
    )


def _measure_setting(
    plan: Plan,
    servers: dict[str, Server],
    script: Path,
    delay: float,
    stream: bool,
    concurrency: int,
) -> list[Cell]:
    """All paths at one setting, side by side."""
    if concurrency == 1:
        cells = _measure_interleaved(plan, servers, delay, stream)
    else:
        cells = _measure_loaded(plan, servers, script, delay, stream, concurrency)
    for cell in cells:
        print(
            f"  {'stream' if stream else 'plain '} c={concurrency:<3} {cell.path:<24} "
            f"{cell.rps:9.1f} req/s  p50 {cell.p50:8.2f} ms  p99 {cell.p99:8.2f} ms"
            f"  errors {cell.errors}",
            flush=True,
        )
    return cells


def _measure_interleaved(
    plan: Plan, servers: dict[str, Server], delay: float, stream: bool
) -> list[Cell]:
    """Concurrency 1: one request per path in turn, LiteLLM in a second pairing.

    LiteLLM is paired with direct on its own: in the same rotation its ~15 ms
    per request would leave the router a tenth of the samples.
    """
    urls = {name: s.url + CHAT_PATH for name, s in servers.items()}
    groups = [{n: u for n, u in urls.items() if n != "litellm"}]
    if "litellm" in urls:
        groups.append({"direct": urls["direct"], "litellm": urls["litellm"]})
    cells: list[Cell] = []
    for index, group in enumerate(groups):
        cpu_before = {name: processes.cpu_seconds(servers[name].pid) for name in group}
        runs = loadgen.run_async(
            loadgen.run_interleaved(group, duration_s=plan.duration_s, stream=stream)
        )
        cpu_used = {
            name: processes.cpu_seconds(servers[name].pid) - cpu_before[name]
            for name in group
        }
        direct = runs["direct"]
        for name, run in runs.items():
            if name == "direct" and index > 0:
                continue
            cell = _cell(name, run, delay, stream, 1)
            if name != "direct" and run.requests:
                cell.cpu_ms_per_request = cpu_used[name] * 1000 / run.requests
            cell.ttft_p50, cell.ttft_p95, cell.ttft_p99 = (
                (run.ttft(50), run.ttft(95), run.ttft(99))
                if stream
                else (math.nan,) * 3
            )
            cell.direct_p50 = direct.latency(50)
            cell.direct_p95 = direct.latency(95)
            cell.direct_p99 = direct.latency(99)
            if stream:
                cell.direct_ttft_p50 = direct.ttft(50)
                cell.direct_ttft_p99 = direct.ttft(99)
            cells.append(cell)
    return cells


def _measure_loaded(
    plan: Plan,
    servers: dict[str, Server],
    script: Path,
    delay: float,
    stream: bool,
    concurrency: int,
) -> list[Cell]:
    """Concurrency above 1: each path in turn; TTFT from a second, shorter run."""
    cells = []
    for name, server in servers.items():
        url = server.url + CHAT_PATH
        cpu_before = processes.cpu_seconds(server.pid)
        if plan.use_wrk:
            try:
                run = loadgen.run_wrk(
                    url, script, concurrency=concurrency, duration_s=plan.duration_s
                )
            except RuntimeError as exc:
                # One stuck path must not lose the rest of the run.
                print(f"  {name}: {exc}", flush=True)
                cells.append(_failed_cell(name, delay, stream, concurrency, str(exc)))
                continue
        else:
            run = loadgen.run_async(
                loadgen.run_aiohttp(
                    url,
                    concurrency=concurrency,
                    duration_s=plan.duration_s,
                    stream=stream,
                )
            )
        cpu_used = processes.cpu_seconds(server.pid) - cpu_before
        cell = _cell(name, run, delay, stream, concurrency)
        if name != "direct" and run.requests:
            cell.cpu_ms_per_request = cpu_used * 1000 / run.requests
        if stream:
            first_token = run
            if plan.use_wrk:
                first_token = loadgen.run_async(
                    loadgen.run_aiohttp(
                        url,
                        concurrency=concurrency,
                        duration_s=plan.ttft_duration_s,
                        stream=True,
                    )
                )
            cell.ttft_p50 = first_token.ttft(50)
            cell.ttft_p95 = first_token.ttft(95)
            cell.ttft_p99 = first_token.ttft(99)
        cells.append(cell)
    return cells


def _failed_cell(
    name: str, delay: float, stream: bool, concurrency: int, why: str
) -> Cell:
    nan = math.nan
    return Cell(
        name, delay, stream, concurrency, "wrk", 0, 0, 0.0, nan, nan, nan, note=why
    )


def _cell(
    name: str, run: loadgen.LoadResult, delay: float, stream: bool, concurrency: int
) -> Cell:
    return Cell(
        path=name,
        delay_ms=delay,
        stream=stream,
        concurrency=concurrency,
        tool=run.tool,
        requests=run.requests,
        errors=run.errors,
        rps=run.rps,
        p50=run.latency(50),
        p95=run.latency(95),
        p99=run.latency(99),
    )


def _measure_decisions(plan: Plan) -> list[decision.DecisionResult]:
    results = [
        asyncio.run(decision.measure_in_process("rules", plan.decision_samples)),
        asyncio.run(decision.measure_in_process("learned", plan.decision_samples // 4)),
    ]
    if plan.quick:
        results.append(
            decision.DecisionResult("triton", note="not measured in quick mode")
        )
    else:
        results.extend(decision.measure_triton(2_000))
    for each in results:
        print(
            f"  decision {each.classifier:<8} p50 {each.p50_ms:.4f} ms  "
            f"p99 {each.p99_ms:.4f} ms  {each.note}",
            flush=True,
        )
    return results


def _describe_servers(servers: dict[str, Server]) -> dict[str, Any]:
    libraries = ("uvloop", "httptools")
    return {
        name: {
            "pid_libraries": processes.loaded_libraries(server.pid, libraries),
        }
        for name, server in servers.items()
    }


def _describe_run(
    plan: Plan,
    started: float,
    load_before: tuple[float, float, float],
    servers: dict[str, Any],
) -> dict[str, Any]:
    return {
        "date": dt.datetime.fromtimestamp(started, dt.UTC).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "duration_s": round(time.time() - started),
        "command": "uv run python -m bench.run " + " ".join(sys.argv[1:]),
        "quick": plan.quick,
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": _cpu_model(),
            "memory_gb": round(
                os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
            ),
            "kernel": platform.release(),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": _versions(plan),
        "servers": servers,
        "classifier": plan.classifier,
        "settings": {
            "delays_ms": plan.delays_ms,
            "concurrencies": plan.concurrencies,
            "duration_s": plan.duration_s,
            "ttft_duration_s": plan.ttft_duration_s,
            "load_generator": "wrk" if plan.use_wrk else "aiohttp",
        },
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _versions(plan: Plan) -> dict[str, str]:
    from importlib.metadata import version

    versions = {
        "python": platform.python_version(),
        "router_commit": _git_commit(),
        "llm-router": version("llm-router"),
        "uvicorn": version("uvicorn"),
        "fastapi": version("fastapi"),
        "aiohttp": version("aiohttp"),
    }
    if plan.use_wrk:
        done = subprocess.run(
            ["wrk", "--version"], capture_output=True, text=True, check=False
        )
        versions["wrk"] = (done.stdout or done.stderr).split()[1]
    if plan.litellm_venv is not None:
        done = subprocess.run(
            [
                str(plan.litellm_venv / "bin" / "python"),
                "-c",
                "import importlib.metadata as m; print(m.version('litellm'))",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        versions["litellm"] = done.stdout.strip() or "unknown"
    return versions


def _git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    commit = done.stdout.strip() or "unknown"
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "services/router"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return commit + ("+dirty" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the results and the report."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="smoke run, seconds")
    parser.add_argument("--out", help="results folder (JSON, logs, quick report)")
    parser.add_argument(
        "--duration", type=float, help="seconds per measurement (default 8; quick 0.4)"
    )
    parser.add_argument(
        "--litellm-venv",
        default=str(processes.DEFAULT_LITELLM_VENV),
        help="LiteLLM's own virtualenv (created by the full run if absent)",
    )
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument(
        "--access-log-variant",
        action="store_true",
        help="also run the router with LLM_ROUTER_ACCESS_LOG=false",
    )
    parser.add_argument(
        "--classifier",
        choices=["rules", "learned"],
        help="the router's classifier (default: the router's own default, "
        "or LLM_ROUTER_CLASSIFIER when set)",
    )
    parser.add_argument(
        "--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    plan = build_plan(args)
    for note in plan.notes:
        print(note, flush=True)

    results = measure(plan)
    results_file = plan.out_dir / "results.json"
    results_file.write_bytes(
        orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    )
    doc = plan.doc or plan.out_dir / "benchmarks.md"
    report.write_report(results, doc, doc.with_suffix(".png"))
    if plan.doc is not None:
        # The raw figures travel with the page they were rendered into.
        doc.with_suffix(".json").write_bytes(results_file.read_bytes())
    print(f"results: {results_file}\nreport: {doc}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
