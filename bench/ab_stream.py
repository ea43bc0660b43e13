"""A/B of two router checkouts on streamed requests, interleaved in one run.

    git worktree add /tmp/before <commit>
    uv run python -m bench.ab_stream /tmp/before            # before, then this
    uv run python -m bench.ab_stream /tmp/before --swap     # this, then before

Both routers run against one bench upstream (no delay) with their access log
on, as in `bench.run`. One aiohttp client sends a streamed request to each in
turn, so neighbouring samples share the machine's state; a full benchmark run
on a shared machine cannot separate a code change from the machine slowing
down between runs, this can. Prints, per router, the p50 and p99 latency of a
whole stream and the router process's CPU time per stream (from
`/proc/PID/stat`, summed over the run, so clock-tick rounding averages out).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench import processes
from bench.loadgen import percentile

WARM_UP = 300


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(name: str, source: Path, upstream: str, workdir: Path) -> processes.Server:
    policy = workdir / f"{name}-policy.yaml"
    policy.write_text(processes.router_policy(upstream), encoding="utf-8")
    port = processes.free_port()
    log = workdir / f"{name}.log"
    env = {**os.environ, "PYTHONPATH": str(source / "services" / "router")}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "llm_router", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--config", str(policy)],
            env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = processes.Server(name, process, f"http://127.0.0.1:{port}", log)
    processes.wait_ready(server, "/healthz", timeout_s=60)
    return server


async def _drive(servers: list[processes.Server], requests: int) -> None:
    latency: dict[str, list[float]] = {s.name: [] for s in servers}
    cpu = dict.fromkeys(latency, 0.0)
    async with aiohttp.ClientSession() as session:
        for i in range(WARM_UP + requests):
            prompt = f"Summarise this note about meeting {i} in one line."
            body = {
                "model": "auto",
                "stream": True,
                "messages": [{"role": "user", "content": prompt}],
            }
            for server in servers:
                before, started = _cpu_s(server.process.pid), time.perf_counter()
                async with session.post(
                    server.url + "/v1/chat/completions", json=body
                ) as response:
                    await response.read()
                if i >= WARM_UP:
                    latency[server.name].append(time.perf_counter() - started)
                    cpu[server.name] += _cpu_s(server.process.pid) - before
    for server in servers:
        samples = latency[server.name]
        print(
            f"{server.name}: p50 {percentile(samples, 50) * 1e3:.3f} ms, "
            f"p99 {percentile(samples, 99) * 1e3:.3f} ms, "
            f"CPU {cpu[server.name] / len(samples) * 1e3:.3f} ms per stream "
            f"({len(samples)} streams)"
        )


def main(argv: list[str] | None = None) -> int:
    """Start both routers, interleave streamed requests, print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="the other checkout's root")
    parser.add_argument("--requests", type=int, default=5_400)
    parser.add_argument("--swap", action="store_true", help="this checkout first")
    args = parser.parse_args(argv)
    if not (args.before / "services" / "router" / "llm_router").is_dir():
        parser.error(f"{args.before} is not a checkout of this repository")

    workdir = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    upstream = processes.start_upstream(0.0, workdir)
    with processes.running(upstream):
        order = [("before", args.before), ("this", processes.ROOT)]
        if args.swap:
            order.reverse()
        servers = [_start(name, path, upstream.url, workdir) for name, path in order]
        try:
            asyncio.run(_drive(servers, args.requests))
        finally:
            for server in servers:
                processes.stop(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
