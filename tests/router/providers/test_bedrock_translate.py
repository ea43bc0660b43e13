"""OpenAI <-> Converse translation rules, checked without any I/O."""

from __future__ import annotations

from typing import Any

import pytest

from llm_router.errors import UpstreamRejected
from llm_router.providers._bedrock_translate import (
    StreamTranslator,
    build_converse_request,
    map_finish_reason,
    to_openai_completion,
)

TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object"}},
}


def build(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """The Converse request for these messages."""
    return build_converse_request({"messages": messages, **extra}, "model-x")


def test_consecutive_tool_results_and_a_user_note_merge_into_one_user_turn() -> None:
    request = build(
        [
            {"role": "user", "content": "Look up a and b."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"k": "a"}'},
                    },
                    {
                        "id": "c2",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"k": "b"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "A"},
            {"role": "tool", "tool_call_id": "c2", "content": "B"},
            {"role": "user", "content": "Now compare them."},
        ],
        tools=[TOOL],
    )

    roles = [m["role"] for m in request["messages"]]
    assert roles == ["user", "assistant", "user"]
    last = request["messages"][2]["content"]
    assert [next(iter(block)) for block in last] == ["toolResult", "toolResult", "text"]
    assert [b["toolResult"]["toolUseId"] for b in last[:2]] == ["c1", "c2"]
    uses = request["messages"][1]["content"]
    assert [u["toolUse"]["input"] for u in uses] == [{"k": "a"}, {"k": "b"}]


def test_tool_history_without_tools_still_declares_the_tools_it_names() -> None:
    request = build(
        [
            {"role": "user", "content": "Go."},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c1", "function": {"name": "lookup", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "done"},
        ]
    )

    names = [t["toolSpec"]["name"] for t in request["toolConfig"]["tools"]]
    assert names == ["lookup"]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", None),
        ("required", {"any": {}}),
        (
            {"type": "function", "function": {"name": "lookup"}},
            {"tool": {"name": "lookup"}},
        ),
    ],
)
def test_tool_choice_maps_to_bedrock_tool_choice(
    choice: Any, expected: dict[str, Any] | None
) -> None:
    request = build(
        [{"role": "user", "content": "hi"}], tools=[TOOL], tool_choice=choice
    )

    assert request["toolConfig"].get("toolChoice") == expected


def test_tool_choice_none_without_tool_history_sends_no_tools() -> None:
    request = build(
        [{"role": "user", "content": "hi"}], tools=[TOOL], tool_choice="none"
    )

    assert "toolConfig" not in request


def test_max_tokens_is_used_when_max_completion_tokens_is_absent() -> None:
    request = build([{"role": "user", "content": "hi"}], max_tokens=7, stop=["a", "b"])

    assert request["inferenceConfig"] == {"maxTokens": 7, "stopSequences": ["a", "b"]}


@pytest.mark.parametrize(
    ("messages", "extra", "fragment"),
    [
        ([{"role": "system", "content": "only rules"}], {}, "start with a user"),
        (
            [{"role": "user", "content": "hi"}],
            {"n": 2},
            "one choice per request",
        ),
        (
            [{"role": "user", "content": "hi"}],
            {"response_format": {"type": "json_schema"}},
            "response_format type 'json_schema'",
        ),
        (
            [{"role": "user", "content": [{"type": "input_audio"}]}],
            {},
            "Supported content parts: text, image_url",
        ),
        ([{"role": "function", "content": "x"}], {}, "Use system, developer"),
        (
            [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "c", "function": {"name": "f", "arguments": "{bad"}}
                    ],
                },
            ],
            {},
            "arguments is not valid JSON",
        ),
        (
            [{"role": "user", "content": "hi"}],
            {"tools": [{"type": "code_interpreter"}]},
            "only 'function' tools",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/bmp;base64,AAAA"},
                        }
                    ],
                }
            ],
            {},
            "Bedrock accepts png, jpeg, gif, webp",
        ),
    ],
)
def test_untranslatable_requests_are_400s_that_say_what_is_accepted(
    messages: list[dict[str, Any]], extra: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(UpstreamRejected) as caught:
        build(messages, **extra)

    assert caught.value.status_code == 400
    assert fragment in caught.value.message


def test_completion_with_text_and_tool_use_keeps_both() -> None:
    response = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"text": "Let me check."},
                    {"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {}}},
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 5, "outputTokens": 6, "totalTokens": 11},
    }

    body = to_openai_completion(response, completion_id="id-1", model="m")

    message = body["choices"][0]["message"]
    assert message["content"] == "Let me check."
    assert message["tool_calls"][0]["function"] == {"name": "lookup", "arguments": "{}"}
    assert body["choices"][0]["finish_reason"] == "tool_calls"


def test_unknown_stop_reasons_become_stop() -> None:
    assert map_finish_reason("malformed_model_output") == "stop"
    assert map_finish_reason(None) == "stop"


def test_stream_translator_skips_events_without_an_openai_delta() -> None:
    translator = StreamTranslator(completion_id="id", model="m")

    citation = {
        "contentBlockDelta": {
            "contentBlockIndex": 0,
            "delta": {"citation": {"title": "a source"}},
        }
    }
    assert translator.translate(citation) is None
    assert translator.translate({"contentBlockStop": {"contentBlockIndex": 0}}) is None
    assert translator.translate({"metadata": {"usage": {"inputTokens": 3}}}) is None
    assert translator.finish()["usage"]["prompt_tokens"] == 3


def test_redacted_reasoning_round_trips_as_base64() -> None:
    translator = StreamTranslator(completion_id="id", model="m")
    redacted = {"reasoningContent": {"redactedContent": b"\x00opaque"}}

    translator.translate(
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": redacted}}
    )
    chunk = translator.translate({"contentBlockStop": {"contentBlockIndex": 0}})
    assert chunk is not None
    blocks = chunk["choices"][0]["delta"]["reasoning_blocks"]
    request = build(
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "ok", "reasoning_blocks": blocks},
            {"role": "user", "content": "and?"},
        ]
    )

    first = request["messages"][1]["content"][0]
    assert first == {"reasoningContent": {"redactedContent": b"\x00opaque"}}
