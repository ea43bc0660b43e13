"""Load generators: `wrk` with a Lua script, and a small aiohttp one for TTFT.

Every request carries a distinct prompt, so the router's decision cache never
answers for the classifier: each request pays for a full decision.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson

PROMPT = (
    "Summarise the following note in two sentences for a status report: the "
    "migration of the billing service finished on Tuesday, two customers saw "
    "duplicate invoices which were refunded, and the old cluster is retired"
)
MAX_TOKENS = 64
T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is installed, as the servers do."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def request_body(n: int | str, *, stream: bool, model: str = "auto") -> bytes:
    """The JSON body of request `n`; its prompt is unique to `n`."""
    body: dict[str, object] = {
        "model": model,
        "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": f"{PROMPT} (request {n})."}],
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


@dataclass
class LoadResult:
    """What one load run measured; latencies in milliseconds."""

    requests: int
    errors: int
    elapsed_s: float
    latencies_ms: list[float] = field(default_factory=list)
    ttfts_ms: list[float] = field(default_factory=list)
    # wrk reports percentiles itself; the aiohttp generator keeps raw samples.
    percentiles_ms: dict[str, float] = field(default_factory=dict)
    tool: str = "aiohttp"

    @property
    def rps(self) -> float:
        """Successful requests per second."""
        return self.requests / self.elapsed_s if self.elapsed_s else 0.0

    def latency(self, q: float) -> float:
        """Latency at percentile `q` (0-100)."""
        key = f"p{q:g}"
        if key in self.percentiles_ms:
            return self.percentiles_ms[key]
        return percentile(self.latencies_ms, q)

    def ttft(self, q: float) -> float:
        """Time to the first streamed chunk at percentile `q` (0-100)."""
        return percentile(self.ttfts_ms, q)


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile `q` (0-100) of `values`; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


_HEADERS = {"content-type": "application/json"}


async def _send(
    session: aiohttp.ClientSession, url: str, body: bytes, stream: bool
) -> tuple[float, float | None] | None:
    """One request: (latency, time to first SSE event) in ms, None if it failed."""
    started = time.perf_counter()
    first = None
    try:
        async with session.post(url, data=body, headers=_HEADERS) as resp:
            if resp.status != 200:
                await resp.read()
                return None
            if stream:
                async for line in resp.content:
                    if first is None and line.startswith(b"data:"):
                        first = time.perf_counter()
            else:
                await resp.read()
    except (aiohttp.ClientError, TimeoutError):
        return None
    ended = time.perf_counter()
    ttft = (first - started) * 1000 if first is not None else None
    return (ended - started) * 1000, ttft


def _session(connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=30),
    )


async def run_aiohttp(
    url: str,
    *,
    concurrency: int,
    duration_s: float,
    stream: bool,
    model: str = "auto",
) -> LoadResult:
    """Closed-loop load from `concurrency` workers for `duration_s` seconds."""
    result = LoadResult(requests=0, errors=0, elapsed_s=0.0)
    counter = 0
    nonce = _nonce()

    async def worker(session: aiohttp.ClientSession, deadline: float) -> None:
        nonlocal counter
        while time.perf_counter() < deadline:
            counter += 1
            body = request_body(f"{nonce}-{counter}", stream=stream, model=model)
            _keep(result, await _send(session, url, body, stream))

    async with _session(concurrency) as session:
        started = time.perf_counter()
        deadline = started + duration_s
        await asyncio.gather(*(worker(session, deadline) for _ in range(concurrency)))
        result.elapsed_s = time.perf_counter() - started
    return result


async def run_interleaved(
    urls: dict[str, str], *, duration_s: float, stream: bool
) -> dict[str, LoadResult]:
    """Concurrency 1 on several paths, one request to each in turn.

    Neighbouring requests to different paths share the machine's state at
    that moment, so on a shared machine the difference between two paths'
    percentiles reflects the paths, not who ran while a neighbour was busy.
    """
    results = {name: LoadResult(requests=0, errors=0, elapsed_s=0.0) for name in urls}
    sessions = {name: _session(1) for name in urls}
    counter = 0
    nonce = _nonce()
    try:
        deadline = time.perf_counter() + duration_s
        while time.perf_counter() < deadline:
            counter += 1
            for name, url in urls.items():
                body = request_body(f"{nonce}-{counter}", stream=stream)
                _keep(results[name], await _send(sessions[name], url, body, stream))
    finally:
        for session in sessions.values():
            await session.close()
    for result in results.values():
        # The rate one connection gets on this path alone, not the rotation's.
        result.elapsed_s = sum(result.latencies_ms) / 1000
    return results


def _nonce() -> str:
    """A token unique to one load run, so no two runs repeat a prompt."""
    return os.urandom(6).hex()


def _keep(result: LoadResult, sample: tuple[float, float | None] | None) -> None:
    if sample is None:
        result.errors += 1
        return
    latency, ttft = sample
    result.requests += 1
    result.latencies_ms.append(latency)
    if ttft is not None:
        result.ttfts_ms.append(ttft)


_WRK_SCRIPT = """
-- The first script argument is a nonce unique to the wrk run; with the
-- thread number and a counter it makes every prompt unique.
local counter = 0
local started = 0
local nonce = "0"
local prefix = %(prefix)s
local suffix = %(suffix)s
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function setup(thread)
  started = started + 1
  thread:set("tid", started)
end

function init(args)
  nonce = args[1] or "0"
end

function request()
  counter = counter + 1
  local body = prefix .. nonce .. "-" .. (tid or 0) .. "-" .. counter .. suffix
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"status_errors":%%d,' ..
    '"socket_errors":%%d,"p50":%%d,"p95":%%d,"p99":%%d,"mean":%%f}\\n',
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.mean))
end
"""


def wrk_available() -> bool:
    """Whether the `wrk` binary is on PATH."""
    return shutil.which("wrk") is not None


def write_wrk_script(path: Path, *, stream: bool, model: str = "auto") -> Path:
    """Write the Lua script that POSTs a unique chat request each time."""
    marker = "@@N@@"
    body = request_body(0, stream=stream, model=model).decode()
    body = body.replace("(request 0).", f"(request {marker}).")
    prefix, suffix = body.split(marker)
    path.write_text(
        _WRK_SCRIPT % {"prefix": _lua_string(prefix), "suffix": _lua_string(suffix)},
        encoding="utf-8",
    )
    return path


def _lua_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run_wrk(
    url: str,
    script: Path,
    *,
    concurrency: int,
    duration_s: float,
    threads: int = 1,
) -> LoadResult:
    """Run `wrk` closed-loop at `concurrency` connections and parse its summary."""
    command = [
        "wrk",
        f"-t{min(threads, concurrency)}",
        f"-c{concurrency}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
        "--",
        _nonce(),
    ]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=duration_s + 60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        msg = f"wrk did not finish {duration_s:g} s of load on {url} within 60 s more"
        raise RuntimeError(msg) from None
    match = re.search(r"^WRKJSON (.*)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        msg = (
            f"wrk failed (exit {done.returncode}) on {url}: "
            f"{(done.stderr or done.stdout).strip()[:300]}"
        )
        raise RuntimeError(msg)
    summary = orjson.loads(match.group(1))
    # wrk counts non-2xx answers among its requests; socket errors apart.
    status_errors = int(summary["status_errors"])
    return LoadResult(
        requests=int(summary["requests"]) - status_errors,
        errors=status_errors + int(summary["socket_errors"]),
        elapsed_s=summary["duration_us"] / 1e6,
        percentiles_ms={
            "p50": summary["p50"] / 1000,
            "p95": summary["p95"] / 1000,
            "p99": summary["p99"] / 1000,
            "mean": summary["mean"] / 1000,
        },
        tool="wrk",
    )
