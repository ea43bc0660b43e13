"""A fast OpenAI-compatible upstream on loopback, with a fixed server-side delay.

Run as `python -m bench.upstream --delay-ms 50`; it prints `READY <port>` on
stdout once it listens. It answers `POST /v1/chat/completions` with a fixed
completion, or with SSE chunks (usage last when `stream_options.include_usage`
is set), after sleeping `--delay-ms` before the first byte. Bodies are built
from pre-encoded parts so the upstream stays far faster than anything in front
of it.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from collections.abc import Callable

import orjson
from aiohttp import web

CONTENT_WORDS = (
    "Paris is the capital of France and its largest city by far".split()  # noqa: SIM905
)
PROMPT_TOKENS = 42
COMPLETION_TOKENS = len(CONTENT_WORDS)


def _usage() -> dict[str, int]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    }


def build_app(delay_ms: float) -> web.Application:
    """The upstream application answering after `delay_ms` milliseconds."""
    delay_s = delay_ms / 1000

    async def completions(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        model = body.get("model", "bench")
        if delay_s:
            await asyncio.sleep(delay_s)
        base = {"id": "chatcmpl-bench", "created": 1, "model": model}
        if not body.get("stream"):
            payload = {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": " ".join(CONTENT_WORDS),
                        },
                        "finish_reason": "stop",
                    }
                ],
                "usage": _usage(),
            }
            return web.Response(
                body=orjson.dumps(payload), content_type="application/json"
            )

        response = web.StreamResponse(
            headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        await response.prepare(request)
        for i, word in enumerate(CONTENT_WORDS):
            delta = {"content": word if i == 0 else " " + word}
            if i == 0:
                delta["role"] = "assistant"
            chunk = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
            }
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        final = {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        await response.write(b"data: " + orjson.dumps(final) + b"\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):
            tail = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [],
                "usage": _usage(),
            }
            await response.write(b"data: " + orjson.dumps(tail) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/health", health)
    return app


async def serve(delay_ms: float, port: int) -> None:
    """Listen on 127.0.0.1 and announce the bound port on stdout."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    runner = web.AppRunner(build_app(delay_ms), access_log=None)
    await runner.setup()
    site = web.SockSite(runner, sock, backlog=1024)
    await site.start()
    print(f"READY {sock.getsockname()[1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Run the upstream until it is terminated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.delay_ms < 0:
        print(f"--delay-ms must be >= 0, not {args.delay_ms}.", file=sys.stderr)
        return 2
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve(args.delay_ms, args.port))
    except KeyboardInterrupt:
        pass
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    raise SystemExit(main())
