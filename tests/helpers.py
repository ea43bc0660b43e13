"""Shared test helpers: real servers on loopback, fakes and factories."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from llm_router.app import create_app
from llm_router.service import RouterService
from llm_router.settings import Settings

LOOPBACK = "127.0.0.1"


@contextlib.contextmanager
def serve(app: Any, *, host: str = LOOPBACK) -> Iterator[str]:
    """Run an ASGI app under a real uvicorn server on an ephemeral port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            msg = "uvicorn did not start within 10 s"
            raise RuntimeError(msg)
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: rules classifier, memory cache, no env leakage."""
    values: dict[str, Any] = {"classifier": "rules", "cache_backend": "memory"}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.contextmanager
def serve_router(
    policy_file: Path | None = None, **overrides: Any
) -> Iterator[tuple[str, RouterService]]:
    """The router app on a real uvicorn server; yields its URL and service."""
    settings = make_settings(policy_file=policy_file, **overrides)
    service = RouterService.from_settings(settings)
    with serve(create_app(settings, service)) as url:
        yield url, service


def write_policy(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    """Write a policy file and return its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class UpstreamScript:
    """What the fake OpenAI upstream does next; tests change it between calls.

    `status`: answer with this HTTP status and an OpenAI error body.
    `delay_s`: sleep before answering (first byte).
    `break_after_chunks`: in a stream, drop the connection after this many chunks.
    `chunk_delay_s`: in a stream, sleep before each chunk (a slow generation).
    `role_first_s`: in a stream, send a role-only chunk first, then wait this
    long before the first word (what real upstreams do while they think).
    `tool_call`: answer with a call of tool `search` under this id, no text.
    `failures`: answer `status` this many times, then 200 (None: always `status`).
    """

    status: int = 200
    delay_s: float = 0.0
    retry_after: str | None = None
    break_after_chunks: int | None = None
    chunk_delay_s: float = 0.0
    role_first_s: float | None = None
    tool_call: str | None = None
    failures: int | None = None
    content: str = "Hello from the fake upstream."
    prompt_tokens: int = 11
    completion_tokens: int = 7
    requests: list[dict[str, Any]] = field(default_factory=list)


def fake_openai_upstream(script: UpstreamScript) -> Starlette:
    """An OpenAI-compatible chat server speaking the real protocol, SSE included."""

    async def completions(request: Request) -> Response:
        body = orjson.loads(await request.body())
        script.requests.append(body)
        if script.delay_s:
            await asyncio.sleep(script.delay_s)
        failing = script.status != 200 and (
            script.failures is None or script.failures > 0
        )
        if failing and script.failures is not None:
            script.failures -= 1
        if failing:
            headers = {"retry-after": script.retry_after} if script.retry_after else {}
            error = {"error": {"message": f"fake failure {script.status}"}}
            return JSONResponse(error, script.status, headers=headers)
        usage = {
            "prompt_tokens": script.prompt_tokens,
            "completion_tokens": script.completion_tokens,
            "total_tokens": script.prompt_tokens + script.completion_tokens,
        }
        base = {"id": "chatcmpl-fake", "created": 1, "model": body["model"]}
        if script.tool_call is not None:
            return _tool_call_answer(script.tool_call, base, usage, body)
        if not body.get("stream"):
            return JSONResponse(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": script.content},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )

        async def events() -> AsyncIterator[bytes]:
            if script.role_first_s is not None:
                role = {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": None,
                        }
                    ],
                }
                yield b"data: " + orjson.dumps(role) + b"\n\n"
                await asyncio.sleep(script.role_first_s)
            words = script.content.split(" ")
            for i, word in enumerate(words):
                if script.break_after_chunks is not None and i >= (
                    script.break_after_chunks
                ):
                    raise ConnectionResetError("fake upstream dropped the stream")
                if script.chunk_delay_s:
                    await asyncio.sleep(script.chunk_delay_s)
                delta = {"content": word if i == 0 else " " + word}
                chunk = {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                }
                yield b"data: " + orjson.dumps(chunk) + b"\n\n"
            final = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
            yield b"data: " + orjson.dumps(final) + b"\n\n"
            if (body.get("stream_options") or {}).get("include_usage"):
                tail = {**base, "object": "chat.completion.chunk", "choices": []}
                tail["usage"] = usage
                yield b"data: " + orjson.dumps(tail) + b"\n\n"
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(
        routes=[Route("/v1/chat/completions", completions, methods=["POST"])]
    )


def _tool_call_answer(
    call_id: str, base: dict[str, Any], usage: dict[str, int], body: dict[str, Any]
) -> Response:
    """A completion, or a stream, that calls tool `search` instead of answering."""
    function = {"name": "search", "arguments": "{}"}
    if not body.get("stream"):
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": function}],
        }
        choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
        return JSONResponse(
            {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        )

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        event = {**base, "object": "chat.completion.chunk", "choices": [choice]}
        return b"data: " + orjson.dumps(event) + b"\n\n"

    async def events() -> AsyncIterator[bytes]:
        # As OpenAI streams a call: the id once, then the arguments in pieces.
        opening = {"index": 0, "id": call_id, "type": "function"}
        yield chunk(
            {
                "role": "assistant",
                "tool_calls": [{**opening, "function": {**function, "arguments": ""}}],
            }
        )
        yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]})
        yield chunk({}, "tool_calls")
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def openai_policy(base_url: str, **tier_extra: Any) -> str:
    """A three-tier policy whose tiers all call one OpenAI-compatible upstream."""
    extra = "".join(f"    {k}: {v}\n" for k, v in tier_extra.items())
    tiers = "".join(
        f"  {name}:\n    provider: upstream\n    model: up-{name}\n"
        f"    input_usd_per_million: {price}\n"
        f"    output_usd_per_million: {price * 4}\n{extra}"
        for name, price in (("small", 0.1), ("medium", 1.0), ("large", 3.0))
    )
    return (
        "version: 1\nname: test-openai\n"
        f"providers:\n  upstream:\n    type: openai\n    base_url: {base_url}/v1\n"
        f"tiers:\n{tiers}"
    )


@dataclass
class RouterProcess:
    """A `llm-router serve` process on loopback, its output captured to files."""

    url: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def output(self) -> str:
        """Everything the process wrote so far, stdout then stderr."""
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(
            errors="replace"
        )

    def rss_bytes(self) -> int:
        """The process's resident set size, from /proc."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        msg = f"no VmRSS in /proc/{self.process.pid}/status"
        raise RuntimeError(msg)


@contextlib.contextmanager
def router_process(
    tmp_path: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> Iterator[RouterProcess]:
    """Run `python -m llm_router serve` on port 0 and wait until it answers."""
    stdout, stderr = tmp_path / "router.out", tmp_path / "router.err"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_ROUTER_")}
    full_env.update({"LLM_ROUTER_CLASSIFIER": "rules", **(env or {})})
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "llm_router", "serve", "--port", "0", *args],
            stdout=out,
            stderr=err,
            env=full_env,
        )
    running = RouterProcess("", process, stdout, stderr)
    try:
        deadline = time.monotonic() + 30
        while not running.url:
            found = re.search(r"running on (http://[0-9.:]+)", running.output())
            if found:
                running.url = found.group(1)
            elif process.poll() is not None or time.monotonic() > deadline:
                msg = f"router process did not start: {running.output()[-2000:]}"
                raise RuntimeError(msg)
            else:
                time.sleep(0.05)
        yield running
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class RedisServer:
    """A real `redis-server` on a free loopback port, stoppable mid-test."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"redis://{LOOPBACK}:{self.port}/0"
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                LOOPBACK,
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    msg = "redis-server did not start within 10 s"
                    raise RuntimeError(msg) from None
                time.sleep(0.02)

    def stop(self) -> None:
        """Kill the server (SIGKILL: an outage, not a clean shutdown)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def free_port() -> int:
    """A currently free loopback port (only for servers that cannot take port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port
