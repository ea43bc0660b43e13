"""Extract the turn to classify from an OpenAI `messages` list.

The latest user message is classified, with the two messages before it as
context, so "make it shorter" after a code answer reads as a rewrite. A
request whose last message is a tool result is classified on the user message
that started the exchange, with the same context: the decision is then the one
made when the tool call was issued, and the turn stays on that tier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llm_router.classifiers.base import Turn

CONTEXT_MESSAGES = 2
CONTEXT_CHARS = 1200


def content_text(content: Any) -> str:
    """The text of a message's `content`: a string or an array of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
        return "\n".join(texts)
    return ""


def extract_turn(messages: Sequence[dict[str, Any]]) -> Turn:
    """The latest user turn and its context."""
    last_user = None
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "user":
            last_user = index
            break
    if last_user is None:
        # Only system/assistant/tool messages: classify the last one with text.
        texts = [content_text(m.get("content")) for m in messages]
        return Turn(text=next((t for t in reversed(texts) if t), ""))

    text = content_text(messages[last_user].get("content"))
    earlier = messages[max(0, last_user - CONTEXT_MESSAGES) : last_user]
    context = "\n".join(
        content_text(m.get("content"))
        for m in earlier
        if m.get("role") in ("user", "assistant")
    )
    return Turn(text=text, context=context[-CONTEXT_CHARS:])
