"""How N concurrent Bedrock streams fare through one router process.

The fake Bedrock runtime and the router each run in a process of their own
(`llm-router serve` with a Bedrock policy whose `endpoint_url` is the fake);
this process drives N streams at once with the official async OpenAI SDK.
Every fake stream takes about `--deltas * --delay-ms` upstream, so a router
that never blocks its event loop finishes N streams in about that time, not N
times it.

    uv run python bench/bedrock_streams.py --streams 64
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import openai

from llm_router.classifiers.base import TASKS

ROOT = Path(__file__).resolve().parents[1]
FAKE_SERVER = """
import socket, sys
sys.path.insert(0, {tests!r})
import uvicorn
from fakes.bedrock_runtime import BedrockReply, FakeBedrock
fake = FakeBedrock(BedrockReply(
    text=" ".join(["word"] * {words}), chunk_delay_s={delay}, output_tokens={deltas},
))
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
config = uvicorn.Config(fake.app, log_level="warning", access_log=False)
uvicorn.Server(config).run(sockets=[sock])
"""
POLICY = """
version: 1
name: bench-bedrock
providers:
  bedrock: {{type: bedrock, region: us-east-1, endpoint_url: "{url}"}}
tiers:
  small:
    provider: bedrock
    model: bench-small
    target: global.anthropic.claude-haiku-5-5
    input_usd_per_million: 0.1
    output_usd_per_million: 0.5
routing:
  tasks: {{{tasks}}}
"""


def main() -> None:
    """Start the fake and the router, run the streams, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--deltas", type=int, default=20)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    args = parser.parse_args()

    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE0000",
        "AWS_SECRET_ACCESS_KEY": "fake-secret-key-for-loopback-tests",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
        "LLM_ROUTER_ACCESS_LOG": "false",
        "LLM_ROUTER_LOG_LEVEL": "WARNING",
    }
    for name in ("AWS_BEARER_TOKEN_BEDROCK", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(name, None)
    fake_code = FAKE_SERVER.format(
        tests=str(ROOT / "tests"),
        words=args.deltas * 2,
        delay=args.delay_ms / 1000,
        deltas=args.deltas,
    )
    fake = subprocess.Popen(
        [sys.executable, "-c", fake_code], stdout=subprocess.PIPE, env=env, text=True
    )
    router: subprocess.Popen[bytes] | None = None
    try:
        assert fake.stdout is not None
        fake_url = f"http://127.0.0.1:{fake.stdout.readline().strip()}"
        with tempfile.TemporaryDirectory() as tmp:
            policy = Path(tmp) / "policy.yaml"
            tasks = ", ".join(f"{task}: small" for task in TASKS)
            policy.write_text(POLICY.format(url=fake_url, tasks=tasks))
            port = _free_port()
            router = subprocess.Popen(
                ["llm-router", "serve", "--config", str(policy), "--port", str(port)],
                env=env,
            )
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url)
            cpu = asyncio.run(
                _measure(url, args.streams, args.deltas, args.delay_ms, router.pid)
            )
            print(f"router CPU           {cpu * 1000 / args.streams:.1f} ms per stream")
    finally:
        for process in (router, fake):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)


async def _measure(
    url: str, streams: int, deltas: int, delay_ms: float, router_pid: int
) -> float:
    """Print the figures; return the router's CPU seconds for the N streams."""
    async with openai.AsyncOpenAI(
        base_url=url + "/v1", api_key="unused", max_retries=0
    ) as sdk:
        await _one(sdk, time.perf_counter())  # warm the router's Bedrock client
        single = await _one(sdk, time.perf_counter())
        cpu_before = _cpu_seconds(router_pid)
        ttft_before = _router_ttft(url)
        started = time.perf_counter()
        results = await asyncio.gather(*(_one(sdk, started) for _ in range(streams)))
        wall = time.perf_counter() - started
        cpu = _cpu_seconds(router_pid) - cpu_before
        ttft_after = _router_ttft(url)

    ttfts = sorted(ttft for ttft, _, _ in results)
    ends = [end for _, end, _ in results]
    tokens = sum(count for _, _, count in results)
    print(f"upstream pacing      {deltas} deltas x {delay_ms:g} ms per stream")
    print(
        f"one stream alone     first content {single[0] * 1000:.0f} ms, "
        f"end {single[1] * 1000:.0f} ms"
    )
    print(f"{streams} streams at once  wall {wall * 1000:.0f} ms")
    print(
        f"first content        p50 {statistics.median(ttfts) * 1000:.0f} ms, "
        f"max {ttfts[-1] * 1000:.0f} ms"
    )
    router_ttft = (ttft_after[0] - ttft_before[0]) / (ttft_after[1] - ttft_before[1])
    print(f"router-side TTFT     mean {router_ttft * 1000:.0f} ms (its own histogram)")
    print(f"first stream ended   {min(ends) * 1000:.0f} ms after start")
    print(f"output tokens        {tokens} (usage chunks of every stream)")
    print(f"serial would take    {single[1] * streams * 1000:.0f} ms")
    return cpu


def _router_ttft(url: str) -> tuple[float, float]:
    """Sum and count of the router's time-to-first-token histogram."""
    values = {"_sum": 0.0, "_count": 0.0}
    for line in httpx.get(url + "/metrics").text.splitlines():
        for suffix in values:
            if line.startswith(f"llm_router_time_to_first_token_seconds{suffix}{{"):
                values[suffix] += float(line.rsplit(" ", 1)[1])
    return values["_sum"], values["_count"]


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _one(sdk: openai.AsyncOpenAI, started: float) -> tuple[float, float, int]:
    """Time to first content, time to end (both from `started`), output tokens."""
    first, tokens = 0.0, 0
    stream = await sdk.chat.completions.create(
        model="small",
        messages=[{"role": "user", "content": "hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if not first and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return first, time.perf_counter() - started, tokens


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    msg = f"router at {url} did not become ready within 30 s"
    raise RuntimeError(msg)


if __name__ == "__main__":
    main()
