"""Measure the router's garbage-collection pauses under load, per GC setting.

    uv run python -m bench.gc_probe

It runs `llm-router serve` three times (Python's default GC; `gc.freeze()`
after start-up; freeze plus `gc.set_threshold(10_000, 20, 20)`, which the
router applies itself since this probe measured it), drives each with
`wrk -c32` for 8 s, and prints the collections per generation with their
longest and total pause. The router runs through this module's `serve`
entry, which installs a `gc.callbacks` timer and, just before uvicorn
starts, undoes the router's own tuning and applies the setting under test;
the router's code is untouched.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import loadgen, processes

SETTINGS = (
    ("default", "", ""),
    ("freeze", "1", ""),
    ("freeze + threshold 10000,20,20", "1", "10000,20,20"),
)


def serve(argv: list[str]) -> int:
    """Run `llm-router serve` with GC pauses recorded; SIGUSR1 writes them."""
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append((time.perf_counter() - started[0]) * 1e3)

    def dump(*_: object) -> None:
        summary = {
            generation: {"collections": len(v), "max_ms": max(v, default=0.0),
                         "total_ms": sum(v)}
            for generation, v in pauses.items()
        }  # fmt: skip
        Path(os.environ["BENCH_GC_OUT"]).write_text(json.dumps(summary))

    import uvicorn

    from llm_router.cli import main

    run = uvicorn.run

    def run_tuned(*args: Any, **kwargs: Any) -> None:
        # Python's defaults first: `llm-router serve` has tuned the collector
        # by the time it calls uvicorn.run.
        gc.unfreeze()
        gc.set_threshold(700, 10, 10)
        if os.environ.get("BENCH_GC_FREEZE"):
            gc.collect()
            gc.freeze()
        if os.environ.get("BENCH_GC_THRESHOLD"):
            gen0, gen1, gen2 = map(int, os.environ["BENCH_GC_THRESHOLD"].split(","))
            gc.set_threshold(gen0, gen1, gen2)
        run(*args, **kwargs)

    uvicorn.run = run_tuned
    gc.callbacks.append(on_gc)
    signal.signal(signal.SIGUSR1, dump)
    return main(["serve", *argv])


def measure() -> int:
    """Each GC setting in turn against one upstream; print the pauses."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-gc-"))
    upstream = processes.start_upstream(0.0, workdir)
    with processes.running(upstream):
        policy = workdir / "policy.yaml"
        policy.write_text(processes.router_policy(upstream.url), encoding="utf-8")
        script = loadgen.write_wrk_script(workdir / "chat.lua", stream=False)
        for label, freeze, threshold in SETTINGS:
            out = workdir / f"gc-{len(label)}.json"
            port = processes.free_port()
            env = {
                **os.environ,
                "BENCH_GC_OUT": str(out),
                "BENCH_GC_FREEZE": freeze,
                "BENCH_GC_THRESHOLD": threshold,
                "LLM_ROUTER_ACCESS_LOG": "false",
            }
            log = workdir / "router.log"
            with log.open("wb") as output:
                process = subprocess.Popen(
                    [sys.executable, "-m", "bench.gc_probe", "serve", "--port",
                     str(port), "--config", str(policy)],
                    cwd=processes.ROOT, env=env, stdout=output,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            router = processes.Server(label, process, f"http://127.0.0.1:{port}", log)
            with processes.running(router):
                processes.wait_ready(router, "/healthz", timeout_s=60)
                result = loadgen.run_wrk(
                    router.url + "/v1/chat/completions",
                    script,
                    concurrency=32,
                    duration_s=8,
                )
                process.send_signal(signal.SIGUSR1)
                time.sleep(0.5)
            summary = json.loads(out.read_text())
            print(f"{label}: {result.rps:,.0f} req/s")
            for generation, figures in summary.items():
                print(
                    f"  gen{generation}: {figures['collections']} collections, "
                    f"max {figures['max_ms']:.1f} ms, "
                    f"total {figures['total_ms']:.0f} ms"
                )
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        raise SystemExit(serve(sys.argv[2:]))
    raise SystemExit(measure())
