"""Every error the API documents, as the official SDK and raw HTTP see it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from helpers import (
    UpstreamScript,
    fake_openai_upstream,
    openai_policy,
    serve,
    serve_router,
    write_policy,
)
from llm_router.service import RouterService

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def router() -> Iterator[tuple[str, RouterService]]:
    with serve_router(max_body_bytes=4096, max_messages=8, max_prompt_tokens=500) as r:
        yield r


def _error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    return error


def test_invalid_json_is_a_400_that_says_so(router: tuple[str, RouterService]) -> None:
    response = httpx.post(
        router[0] + "/v1/chat/completions",
        content=b'{"model": "auto", "messages": [',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 400, response.text
    error = _error(response)
    assert "not valid JSON" in str(error["message"])
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"model": "auto"}, "messages", "Missing required field 'messages'"),
        ({"model": "auto", "messages": []}, "messages", "at least 1 item"),
        (
            {"model": "auto", "messages": [{"role": "robot", "content": "x"}]},
            "messages.0.role",
            "'system', 'developer', 'user', 'assistant', 'tool' or 'function'",
        ),
        ({"messages": HELLO}, "model", "Missing required field 'model'"),
        ({"model": "auto", "messages": HELLO, "stream": "yes"}, "stream", "boolean"),
        ({"model": "auto", "messages": HELLO, "max_tokens": 0}, "max_tokens", ">= 1"),
        ([1, 2], None, "must be a JSON object, not list"),
    ],
)
def test_schema_errors_name_the_field_and_what_it_accepts(
    router: tuple[str, RouterService],
    body: object,
    param: str | None,
    fragment: str,
) -> None:
    response = httpx.post(router[0] + "/v1/chat/completions", json=body)

    assert response.status_code == 400, response.text
    error = _error(response)
    assert error["param"] == param
    assert fragment.replace(">= 1", "greater than or equal to 1") in str(
        error["message"]
    ), error


def test_unknown_model_is_a_404_listing_the_accepted_models(
    router: tuple[str, RouterService],
) -> None:
    with (
        openai.OpenAI(base_url=router[0] + "/v1", api_key="x", max_retries=0) as client,
        pytest.raises(openai.NotFoundError) as caught,
    ):
        client.chat.completions.create(model="gpt-17", messages=HELLO)  # type: ignore[arg-type]

    message = caught.value.body["message"]  # type: ignore[index]
    assert "Unknown model 'gpt-17'" in message
    assert "auto, small, medium, large, sim-small" in message


def test_body_over_the_limit_is_a_413(router: tuple[str, RouterService]) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "x" * 5000}]}

    response = httpx.post(router[0] + "/v1/chat/completions", json=body)

    assert response.status_code == 413, response.text
    assert "limit of 4096 bytes" in str(_error(response)["message"])


def test_too_many_messages_and_too_long_prompts_are_400s(
    router: tuple[str, RouterService],
) -> None:
    many = {"model": "auto", "messages": HELLO * 9}
    long = {"model": "auto", "messages": [{"role": "user", "content": "y" * 2400}]}

    too_many = httpx.post(router[0] + "/v1/chat/completions", json=many)
    too_long = httpx.post(router[0] + "/v1/chat/completions", json=long)

    assert too_many.status_code == 400, too_many.text
    assert _error(too_many)["code"] == "too_many_messages"
    assert too_long.status_code == 400, too_long.text
    assert _error(too_long)["code"] == "context_length_exceeded"


def test_unknown_path_and_wrong_method_get_openai_shaped_errors(
    router: tuple[str, RouterService],
) -> None:
    missing = httpx.get(router[0] + "/v1/nothing")
    wrong = httpx.get(router[0] + "/v1/chat/completions")

    assert missing.status_code == 404
    assert "/v1/nothing" in str(_error(missing)["message"])
    assert wrong.status_code == 405
    assert "GET" in str(_error(wrong)["message"])


def _sdk_failure(url: str, **extra: object) -> openai.APIStatusError:
    """The error the official SDK raises for one chat request to `url`."""
    client = openai.OpenAI(
        base_url=url + "/v1", api_key="unused", max_retries=0, timeout=10
    )
    with client, pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="small", messages=HELLO, **extra)  # type: ignore[call-overload]
    return failed.value


def _says_what_was_decided(error: openai.APIStatusError) -> None:
    # A failed answer still tells the client which tier the router chose.
    headers = error.response.headers
    assert headers["x-router-tier"] == "small"
    assert headers["x-router-routed-tier"] == "small"
    assert headers["x-router-model"] == "up-small"
    assert headers["x-router-fallbacks"] == "0"
    assert headers["x-request-id"]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("status", [500, 503, 401, 403])
def test_upstream_failure_is_a_502_naming_the_upstream_status(
    tmp_path: Path, status: int, stream: bool
) -> None:
    script = UpstreamScript(status=status)
    with serve(fake_openai_upstream(script)) as upstream:
        policy = write_policy(tmp_path, openai_policy(upstream))
        with serve_router(policy) as (url, _):
            error = _sdk_failure(url, stream=stream)

    assert error.status_code == 502, error.response.text
    assert f"HTTP {status}" in error.message
    if status in (401, 403):
        assert "credentials" in error.message, "an operator's problem, said so"
    _says_what_was_decided(error)


def test_upstream_that_never_answers_is_a_504(tmp_path: Path) -> None:
    script = UpstreamScript(delay_s=2.0)
    timeouts = "{connect: 1, first_byte: 0.3, total: 1}"
    with serve(fake_openai_upstream(script)) as upstream:
        policy = write_policy(tmp_path, openai_policy(upstream, timeouts=timeouts))
        with serve_router(policy) as (url, _):
            error = _sdk_failure(url)

    assert error.status_code == 504, error.response.text
    assert "did not answer in time" in error.message
    _says_what_was_decided(error)


def test_unreachable_upstream_is_a_502(tmp_path: Path) -> None:
    policy = write_policy(tmp_path, openai_policy("http://127.0.0.1:9"))
    with serve_router(policy) as (url, _):
        error = _sdk_failure(url)

    assert error.status_code == 502, error.response.text
    assert "unreachable" in error.message
    assert "127.0.0.1" not in error.message, "the upstream's address stays inside"
    _says_what_was_decided(error)


def test_upstream_rejection_is_a_400_with_the_upstream_message(tmp_path: Path) -> None:
    script = UpstreamScript(status=400)
    with serve(fake_openai_upstream(script)) as upstream:
        policy = write_policy(tmp_path, openai_policy(upstream))
        with serve_router(policy) as (url, _):
            response = httpx.post(
                url + "/v1/chat/completions", json={"model": "small", "messages": HELLO}
            )

    assert response.status_code == 400, response.text
    assert "fake failure 400" in str(_error(response)["message"])
