"""Input limits answer before any upstream is called."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import (
    UpstreamScript,
    fake_openai_upstream,
    openai_policy,
    serve,
    serve_router,
    write_policy,
)

LIMITS = {"max_body_bytes": 2048, "max_messages": 3, "max_prompt_tokens": 50}


@pytest.fixture(scope="module")
def router(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, UpstreamScript]]:
    script = UpstreamScript()
    with serve(fake_openai_upstream(script)) as upstream:
        tmp: Path = tmp_path_factory.mktemp("limits")
        policy = write_policy(tmp, openai_policy(upstream))
        with serve_router(policy, **LIMITS) as (url, _service):
            yield url, script


def post(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", timeout=10, **kwargs)


def test_a_declared_oversized_body_is_a_413(
    router: tuple[str, UpstreamScript],
) -> None:
    url, script = router
    content = "x" * 3000
    response = post(
        url, json={"model": "small", "messages": [{"role": "user", "content": content}]}
    )

    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "body_too_large"
    assert "2048 bytes" in response.json()["error"]["message"]
    assert script.requests == []


def test_a_chunked_oversized_body_is_a_413_while_reading(
    router: tuple[str, UpstreamScript],
) -> None:
    url, script = router

    def chunks() -> Iterator[bytes]:
        yield b'{"model": "small", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}]}'

    response = post(url, content=chunks(), headers={"content-type": "application/json"})

    assert response.status_code == 413, response.text
    assert script.requests == []


def test_too_many_messages_is_a_400_naming_the_limit(
    router: tuple[str, UpstreamScript],
) -> None:
    url, script = router
    messages = [{"role": "user", "content": "hi"}] * 4
    response = post(url, json={"model": "small", "messages": messages})

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "too_many_messages"
    assert "at most 3" in error["message"]
    assert script.requests == []


def test_a_prompt_over_the_token_estimate_is_a_400(
    router: tuple[str, UpstreamScript],
) -> None:
    url, script = router
    messages = [{"role": "user", "content": "word " * 60}]
    response = post(url, json={"model": "small", "messages": messages})

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert "at most 50" in error["message"]
    assert script.requests == []


def test_a_request_within_every_limit_reaches_the_upstream(
    router: tuple[str, UpstreamScript],
) -> None:
    url, script = router
    response = post(
        url, json={"model": "small", "messages": [{"role": "user", "content": "hi"}]}
    )

    assert response.status_code == 200, response.text
    assert len(script.requests) == 1
