"""OpenAI chat shapes to Bedrock Converse shapes and back.

Pure functions, no I/O: `build_converse_request` turns an OpenAI chat body
into Converse keyword arguments, `to_openai_completion` turns a Converse
response into a `chat.completion`, and `StreamTranslator` turns ConverseStream
events into `chat.completion.chunk` dicts. Anything Bedrock cannot express
raises `UpstreamRejected` (400) naming the field and what is accepted.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from typing import Any

import orjson

from llm_router.errors import UpstreamRejected
from llm_router.providers.base import JSON, Usage

FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
IMAGE_FORMATS = ("png", "jpeg", "gif", "webp")
_DATA_URL = re.compile(r"^data:image/(?P<format>[a-z]+);base64,(?P<data>.*)$", re.S)
# Assistant-message field carrying Bedrock reasoning blocks (text + signature,
# or redacted bytes as base64) out to clients and back in on the next turn:
# Claude needs the signed blocks of a tool-calling turn returned unchanged.
REASONING_BLOCKS = "reasoning_blocks"
_SYSTEM_ROLES = ("system", "developer")
_TOOL_CHOICES = "'auto', 'required', 'none' or {'type': 'function', ...}"


def build_converse_request(body: JSON, target: str) -> JSON:
    """Keyword arguments for `converse` / `converse_stream` from an OpenAI body."""
    n = body.get("n")
    if n not in (None, 1):
        raise _rejected(
            f"'n' = {n!r} is not supported by Bedrock tiers, which return one "
            "choice per request. Send n=1 or leave it out."
        )
    _check_response_format(body.get("response_format"))

    system, messages = _translate_messages(body.get("messages") or [])
    request: JSON = {"modelId": target, "messages": messages}
    if system:
        request["system"] = system
    inference = _inference_config(body)
    if inference:
        request["inferenceConfig"] = inference
    tool_config = _tool_config(body, messages)
    if tool_config:
        request["toolConfig"] = tool_config
    return request


def to_openai_completion(response: JSON, *, completion_id: str, model: str) -> JSON:
    """A Converse response as an OpenAI `chat.completion` body."""
    message = (response.get("output") or {}).get("message") or {}
    texts: list[str] = []
    tool_calls: list[JSON] = []
    reasoning: list[JSON] = []
    for block in message.get("content") or ():
        if "text" in block:
            texts.append(block["text"])
        elif "reasoningContent" in block:
            reasoning.append(_reasoning_to_openai(block["reasoningContent"]))
        elif "toolUse" in block:
            tool = block["toolUse"]
            tool_calls.append(
                {
                    "id": tool["toolUseId"],
                    "type": "function",
                    "function": {
                        "name": tool["name"],
                        "arguments": orjson.dumps(tool.get("input", {})).decode(),
                    },
                }
            )
    reply: JSON = {"role": "assistant", "content": "".join(texts) or None}
    if tool_calls:
        reply["tool_calls"] = tool_calls
    if reasoning:
        reply["reasoning_content"] = "".join(r.get("text", "") for r in reasoning)
        reply[REASONING_BLOCKS] = reasoning
    usage = usage_from_bedrock(response.get("usage"))
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "finish_reason": map_finish_reason(response.get("stopReason")),
            }
        ],
        "usage": usage_to_openai(usage, response.get("usage")),
    }


def usage_from_bedrock(usage: JSON | None) -> Usage:
    """Bedrock token usage; prompt-cache reads and writes count as input."""
    if not usage:
        return Usage()
    cached = int(usage.get("cacheReadInputTokens") or 0)
    written = int(usage.get("cacheWriteInputTokens") or 0)
    return Usage(
        input_tokens=int(usage.get("inputTokens") or 0) + cached + written,
        output_tokens=int(usage.get("outputTokens") or 0),
    )


def usage_to_openai(usage: Usage, raw: JSON | None) -> JSON:
    """An OpenAI `usage` object, with cached prompt tokens where Bedrock gave them."""
    body = usage.to_openai()
    cached = int((raw or {}).get("cacheReadInputTokens") or 0)
    if cached:
        body["prompt_tokens_details"] = {"cached_tokens": cached}
    return body


def map_finish_reason(stop_reason: str | None) -> str:
    """Bedrock's `stopReason` as an OpenAI `finish_reason`."""
    return FINISH_REASONS.get(stop_reason or "end_turn", "stop")


class StreamTranslator:
    """Turns ConverseStream events into OpenAI chunks, one event at a time.

    Usage arrives only in the final `metadata` event; it is held and emitted
    by `finish()` as the last chunk, after the finish reason.
    """

    def __init__(self, *, completion_id: str, model: str) -> None:
        self._base: JSON = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        self._tool_index: dict[int, int] = {}
        self._reasoning: dict[int, JSON] = {}
        self.usage: Usage | None = None
        self._raw_usage: JSON | None = None

    def translate(self, event: JSON) -> JSON | None:
        """The chunk for one event, or None when the event carries no delta."""
        if "messageStart" in event:
            return self._chunk({"role": "assistant", "content": ""})
        if "contentBlockStart" in event:
            return self._start_block(event["contentBlockStart"])
        if "contentBlockDelta" in event:
            return self._delta(event["contentBlockDelta"])
        if "contentBlockStop" in event:
            return self._stop_block(event["contentBlockStop"])
        if "messageStop" in event:
            reason = map_finish_reason(event["messageStop"].get("stopReason"))
            return self._chunk({}, finish_reason=reason)
        if "metadata" in event:
            self._raw_usage = event["metadata"].get("usage")
            self.usage = usage_from_bedrock(self._raw_usage)
        return None

    def finish(self) -> JSON:
        """The closing usage chunk (`choices` empty), as OpenAI sends it."""
        usage = self.usage or Usage()
        return {
            **self._base,
            "choices": [],
            "usage": usage_to_openai(usage, self._raw_usage),
        }

    def _start_block(self, start: JSON) -> JSON | None:
        tool = (start.get("start") or {}).get("toolUse")
        if tool is None:
            return None
        index = len(self._tool_index)
        self._tool_index[start.get("contentBlockIndex", 0)] = index
        call = {
            "index": index,
            "id": tool["toolUseId"],
            "type": "function",
            "function": {"name": tool["name"], "arguments": ""},
        }
        return self._chunk({"tool_calls": [call]})

    def _delta(self, block: JSON) -> JSON | None:
        delta = block.get("delta") or {}
        if "text" in delta:
            return self._chunk({"content": delta["text"]})
        if "toolUse" in delta:
            index = self._tool_index.get(block.get("contentBlockIndex", 0), 0)
            arguments = delta["toolUse"].get("input", "")
            call = {"index": index, "function": {"arguments": arguments}}
            return self._chunk({"tool_calls": [call]})
        if "reasoningContent" in delta:
            return self._reason(block.get("contentBlockIndex", 0), delta)
        # Citation deltas have no OpenAI chat equivalent.
        return None

    def _reason(self, index: int, delta: JSON) -> JSON | None:
        piece = delta["reasoningContent"]
        held = self._reasoning.setdefault(index, {})
        if "signature" in piece:
            held["signature"] = held.get("signature", "") + piece["signature"]
        if "redactedContent" in piece:
            held["redacted"] = _b64(piece["redactedContent"])
        if "text" in piece:
            held["text"] = held.get("text", "") + piece["text"]
            return self._chunk({"reasoning_content": piece["text"]})
        return None

    def _stop_block(self, stop: JSON) -> JSON | None:
        # A reasoning block is complete (and signed) only at its stop event.
        held = self._reasoning.pop(stop.get("contentBlockIndex", 0), None)
        if held is None:
            return None
        return self._chunk({REASONING_BLOCKS: [held]})

    def _chunk(self, delta: JSON, finish_reason: str | None = None) -> JSON:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return {**self._base, "choices": [choice]}


def _translate_messages(raw: list[Any]) -> tuple[list[JSON], list[JSON]]:
    system: list[JSON] = []
    messages: list[JSON] = []
    for position, message in enumerate(raw):
        if not isinstance(message, dict):
            raise _rejected(f"messages[{position}] must be an object.")
        role = message.get("role")
        where = f"messages[{position}]"
        if role in _SYSTEM_ROLES:
            text = _plain_text(message.get("content"), where)
            if text.strip():
                system.append({"text": text})
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), where)
            bedrock_role = "user"
        elif role == "assistant":
            blocks = _assistant_blocks(message, where)
            bedrock_role = "assistant"
        elif role == "tool":
            blocks = [_tool_result(message, where)]
            bedrock_role = "user"
        else:
            raise _rejected(
                f"{where}.role = {role!r} is not supported by Bedrock tiers. "
                "Use system, developer, user, assistant or tool."
            )
        if not blocks:
            continue
        # Bedrock needs strictly alternating roles; OpenAI allows runs (several
        # tool results, or a tool result followed by a user note): merge them.
        if messages and messages[-1]["role"] == bedrock_role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": bedrock_role, "content": blocks})
    if not messages or messages[0]["role"] != "user":
        raise _rejected(
            "Bedrock needs the conversation to start with a user message after "
            "any system messages; this request has "
            f"{'none' if not messages else 'an assistant message first'}."
        )
    return system, messages


def _user_blocks(content: Any, where: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"text": content}] if content.strip() else []
    if not isinstance(content, list):
        raise _rejected(f"{where}.content must be a string or an array of parts.")
    blocks: list[JSON] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if str(part.get("text", "")).strip():
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            blocks.append(_image_block(url, f"{where}.content[{index}]"))
        else:
            raise _rejected(
                f"{where}.content[{index}] has type {kind!r}, which Bedrock tiers "
                "do not accept. Supported content parts: text, image_url (data: "
                "URLs)."
            )
    return blocks


def _image_block(url: str, where: str) -> JSON:
    match = _DATA_URL.match(url)
    if match is None:
        raise _rejected(
            f"{where}.image_url must be a base64 data: URL such as "
            "'data:image/png;base64,...'; Bedrock tiers cannot fetch remote "
            f"images. Formats: {', '.join(IMAGE_FORMATS)}."
        )
    image_format = match.group("format").replace("jpg", "jpeg")
    if image_format not in IMAGE_FORMATS:
        raise _rejected(
            f"{where}.image_url has format {image_format!r}. Bedrock accepts "
            f"{', '.join(IMAGE_FORMATS)}."
        )
    try:
        data = base64.b64decode(match.group("data"), validate=True)
    except (binascii.Error, ValueError):
        raise _rejected(f"{where}.image_url is not valid base64.") from None
    return {"image": {"format": image_format, "source": {"bytes": data}}}


def _assistant_blocks(message: JSON, where: str) -> list[JSON]:
    blocks = _reasoning_blocks(message.get(REASONING_BLOCKS), where)
    content = message.get("content")
    if content is not None:
        text = _plain_text(content, where, allow_refusal=True)
        if text.strip():
            blocks.append({"text": text})
    for index, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            parsed = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            raise _rejected(
                f"{where}.tool_calls[{index}].function.arguments is not valid "
                "JSON; Bedrock needs tool inputs as JSON objects."
            ) from None
        blocks.append(
            {
                "toolUse": {
                    "toolUseId": call.get("id") or f"call_{index}",
                    "name": function.get("name") or "",
                    "input": parsed if isinstance(parsed, dict) else {"value": parsed},
                }
            }
        )
    return blocks


def _reasoning_blocks(raw: Any, where: str) -> list[JSON]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _rejected(f"{where}.{REASONING_BLOCKS} must be an array.")
    blocks: list[JSON] = []
    for index, item in enumerate(raw):
        if isinstance(item, dict) and isinstance(item.get("redacted"), str):
            try:
                data = base64.b64decode(item["redacted"], validate=True)
            except (binascii.Error, ValueError):
                data = None
            if data is not None:
                blocks.append({"reasoningContent": {"redactedContent": data}})
                continue
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            text: JSON = {"text": item["text"]}
            if isinstance(item.get("signature"), str):
                text["signature"] = item["signature"]
            blocks.append({"reasoningContent": {"reasoningText": text}})
            continue
        raise _rejected(
            f"{where}.{REASONING_BLOCKS}[{index}] must be an object with 'text' "
            "(and 'signature') or a base64 'redacted', as this router returned it."
        )
    return blocks


def _reasoning_to_openai(block: JSON) -> JSON:
    if "redactedContent" in block:
        return {"redacted": _b64(block["redactedContent"])}
    text = block.get("reasoningText") or {}
    out: JSON = {"text": text.get("text", "")}
    if text.get("signature"):
        out["signature"] = text["signature"]
    return out


def _b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def _tool_result(message: JSON, where: str) -> JSON:
    call_id = message.get("tool_call_id")
    if not call_id:
        raise _rejected(f"{where} has role 'tool' but no 'tool_call_id'.")
    text = _plain_text(message.get("content"), where)
    return {
        "toolResult": {
            "toolUseId": call_id,
            "content": [{"text": text if text.strip() else "(empty result)"}],
        }
    }


def _plain_text(content: Any, where: str, *, allow_refusal: bool = False) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _rejected(f"{where}.content must be a string or an array of parts.")
    texts: list[str] = []
    accepted = ("text", "refusal") if allow_refusal else ("text",)
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in accepted:
            raise _rejected(
                f"{where}.content[{index}] has type {kind!r}; in this message "
                f"Bedrock tiers accept only {' and '.join(accepted)} parts."
            )
        texts.append(str(part.get(kind) or ""))
    return "".join(texts)


def _inference_config(body: JSON) -> JSON:
    config: JSON = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    if body.get("temperature") is not None:
        config["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        config["topP"] = body["top_p"]
    stop = body.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        config["stopSequences"] = [str(s) for s in stop]
    return config


def _tool_config(body: JSON, messages: list[JSON]) -> JSON | None:
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    specs = [_tool_spec(tool, index) for index, tool in enumerate(tools)]
    used = _tool_names_in(messages)
    if choice == "none" or not specs:
        if not used:
            return None
        # Bedrock rejects toolUse/toolResult history without a toolConfig, and
        # has no "none" choice: declare the tools the history names, loosely.
        known = {spec["toolSpec"]["name"] for spec in specs}
        specs += [_loose_spec(name) for name in sorted(used - known)]
        return {"tools": specs}

    config: JSON = {"tools": specs}
    if choice is None or choice == "auto":
        return config
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if not name:
            raise _rejected("tool_choice.function.name is missing.")
        config["toolChoice"] = {"tool": {"name": name}}
    else:
        raise _rejected(f"tool_choice = {choice!r} is not valid. Use {_TOOL_CHOICES}.")
    return config


def _tool_spec(tool: Any, index: int) -> JSON:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        kind = tool.get("type") if isinstance(tool, dict) else tool
        raise _rejected(
            f"tools[{index}] has type {kind!r}; Bedrock tiers accept only "
            "'function' tools."
        )
    function = tool.get("function") or {}
    name = function.get("name")
    if not name:
        raise _rejected(f"tools[{index}].function.name is missing.")
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    spec: JSON = {"name": name, "inputSchema": {"json": parameters}}
    if function.get("description"):
        spec["description"] = function["description"]
    return {"toolSpec": spec}


def _loose_spec(name: str) -> JSON:
    schema = {"type": "object", "properties": {}}
    return {"toolSpec": {"name": name, "inputSchema": {"json": schema}}}


def _tool_names_in(messages: list[JSON]) -> set[str]:
    names = {
        block["toolUse"]["name"]
        for message in messages
        for block in message["content"]
        if "toolUse" in block
    }
    has_results = any(
        "toolResult" in block for message in messages for block in message["content"]
    )
    if has_results and not names:
        # A tool result whose call is not in the history still needs a toolConfig.
        names.add("tool")
    return names


def _check_response_format(response_format: Any) -> None:
    if response_format is None:
        return
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return
    raise _rejected(
        f"response_format type {kind!r} is not supported by Bedrock tiers. "
        "Leave response_format out (or use type 'text') and describe the JSON "
        "shape in the prompt, or offer a tool whose parameters are the schema."
    )


def _rejected(message: str) -> UpstreamRejected:
    return UpstreamRejected(message, code="unsupported_for_bedrock")
