"""Load: 200 concurrent streaming clients for 30 s against a real router process.

The router runs as its own `llm-router serve` process on the simulated
provider; this process is the load generator. Expected: zero errors, and the
router's resident memory grows less than 20 MB after warm-up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from helpers import router_process, write_policy

CLIENTS = 200
DURATION_S = 30.0
WARM_UP_S = 5.0
MAX_RSS_GROWTH = 20 * 1024 * 1024

POLICY = """\
version: 1
name: load
providers:
  sim:
    type: simulated
    chunk_delay_ms: 5
tiers:
  small:
    provider: sim
    model: sim-small
    input_usd_per_million: 0.1
    output_usd_per_million: 0.4
  medium:
    provider: sim
    model: sim-medium
    input_usd_per_million: 1
    output_usd_per_million: 4
  large:
    provider: sim
    model: sim-large
    input_usd_per_million: 3
    output_usd_per_million: 12
"""

PROMPTS = (
    "Write a simple FizzBuzz program in Python.",
    "Summarize the following paragraph in one sentence: the meeting moved.",
    "What is the capital of France and why did it become the capital?",
    "Design a distributed key-value store that tolerates network partitions.",
)


@dataclass
class Tally:
    """What the load generator saw."""

    streams: int = 0
    errors: list[str] = field(default_factory=list)


async def run_client(
    session: aiohttp.ClientSession, url: str, index: int, stop: float, tally: Tally
) -> None:
    body = {
        "model": "auto",
        "stream": True,
        "max_tokens": 40,
        "messages": [{"role": "user", "content": PROMPTS[index % len(PROMPTS)]}],
    }
    while time.monotonic() < stop:
        try:
            async with session.post(url, json=body) as response:
                payload = await response.read()
            if response.status != 200 or not payload.endswith(b"data: [DONE]\n\n"):
                tally.errors.append(f"{response.status}: {payload[-200:]!r}")
            elif b'"error"' in payload:
                tally.errors.append(f"in-band error: {payload[-300:]!r}")
            else:
                tally.streams += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.errors.append(type(exc).__name__)


async def generate_load(
    url: str, rss: list[int], sample_rss: Callable[[], int]
) -> Tally:
    tally = Tally()
    started = time.monotonic()
    stop = started + DURATION_S
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        clients = [
            asyncio.create_task(run_client(session, url, i, stop, tally))
            for i in range(CLIENTS)
        ]
        await asyncio.sleep(WARM_UP_S)
        rss.append(sample_rss())
        while time.monotonic() < stop:
            await asyncio.sleep(1.0)
            rss.append(sample_rss())
        await asyncio.gather(*clients)
    return tally


@pytest.mark.slow
def test_200_streaming_clients_for_30_s_without_errors_or_memory_growth(
    tmp_path: Path,
) -> None:
    policy = write_policy(tmp_path, POLICY)
    env = {"LLM_ROUTER_POLICY_FILE": str(policy)}
    with router_process(tmp_path, env) as router:
        rss: list[int] = []
        started = time.monotonic()
        tally = asyncio.run(
            generate_load(router.url + "/v1/chat/completions", rss, router.rss_bytes)
        )
        elapsed = time.monotonic() - started
        rss.append(router.rss_bytes())

    growth = rss[-1] - rss[0]
    print(
        f"\nload: {CLIENTS} clients, {elapsed:.1f} s, {tally.streams} streams "
        f"({tally.streams / elapsed:.0f}/s), {len(tally.errors)} errors; "
        f"RSS after warm-up {rss[0] / 2**20:.1f} MiB, peak "
        f"{max(rss) / 2**20:.1f} MiB, end {rss[-1] / 2**20:.1f} MiB, "
        f"growth {growth / 2**20:+.1f} MiB"
    )
    assert tally.errors == [], tally.errors[:5]
    assert tally.streams > CLIENTS, "every client completed streams"
    assert growth < MAX_RSS_GROWTH, [r / 2**20 for r in rss]
