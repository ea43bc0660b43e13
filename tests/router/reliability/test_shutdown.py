"""Graceful shutdown of a real `llm-router serve` process receiving SIGTERM."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from helpers import router_process, write_policy

SLOW_POLICY = """\
version: 1
name: slow
providers:
  sim:
    type: simulated
    chunk_delay_ms: {delay}
tiers:
  small:
    provider: sim
    model: sim-small
    input_usd_per_million: 1
    output_usd_per_million: 1
routing:
  tasks: {{other: small}}
"""


def stream_in_background(
    url: str, max_tokens: int
) -> tuple[threading.Thread, list[str]]:
    lines: list[str] = []

    def run() -> None:
        try:
            with httpx.stream(
                "POST",
                url + "/v1/chat/completions",
                json={
                    "model": "small",
                    "stream": True,
                    "max_tokens": max_tokens,
                    "messages": [{"role": "user", "content": "hi"}],
                },
                timeout=30,
            ) as response:
                for line in response.iter_lines():
                    lines.append(line)
        except httpx.HTTPError as exc:
            lines.append(f"error: {type(exc).__name__}")

    thread = threading.Thread(target=run)
    thread.start()
    return thread, lines


@pytest.mark.slow
def test_sigterm_drains_an_open_stream_then_exits_cleanly(tmp_path: Path) -> None:
    policy = write_policy(tmp_path, SLOW_POLICY.format(delay=150))
    env = {"LLM_ROUTER_POLICY_FILE": str(policy), "LLM_ROUTER_SHUTDOWN_GRACE_S": "10"}
    with router_process(tmp_path, env) as router:
        thread, lines = stream_in_background(router.url, max_tokens=60)
        deadline = time.monotonic() + 10
        while not any(line.startswith("data: ") for line in lines):
            assert time.monotonic() < deadline, router.output()
            time.sleep(0.02)
        router.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.ConnectError):
            httpx.get(router.url + "/healthz", timeout=2)
        thread.join(timeout=20)
        code = router.process.wait(timeout=20)

    data = [line for line in lines if line.startswith("data: ")]
    assert data[-1] == "data: [DONE]", lines[-3:]
    assert len(data) >= 10, "every chunk of the answer arrived"
    # uvicorn re-raises the SIGTERM it drained for, so the exit status says
    # "terminated by SIGTERM" after a complete shutdown.
    assert code == -signal.SIGTERM, router.output()[-2000:]
    assert "Application shutdown complete" in router.output()


@pytest.mark.slow
def test_a_stream_longer_than_the_grace_period_is_cut_at_the_deadline(
    tmp_path: Path,
) -> None:
    policy = write_policy(tmp_path, SLOW_POLICY.format(delay=500))
    env = {"LLM_ROUTER_POLICY_FILE": str(policy), "LLM_ROUTER_SHUTDOWN_GRACE_S": "1"}
    with router_process(tmp_path, env) as router:
        thread, lines = stream_in_background(router.url, max_tokens=120)
        deadline = time.monotonic() + 10
        while not lines:
            assert time.monotonic() < deadline, router.output()
            time.sleep(0.02)
        started = time.monotonic()
        router.process.send_signal(signal.SIGTERM)
        router.process.wait(timeout=20)
        exited_after = time.monotonic() - started
        thread.join(timeout=20)

    assert exited_after < 4.0, "the grace period bounds shutdown"
    assert "data: [DONE]" not in lines
