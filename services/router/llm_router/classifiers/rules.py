"""The rule-based classifier: keywords and structure, no dependencies.

It is the fallback when no learned artifact is available and the baseline the
learned classifier is measured against. Each task has weighted patterns; the
scores go through a softmax. Complexity starts from a neutral score and moves
with markers of hard work (design, proofs, distributed systems, many
constraints, long prompts) and of easy work (simple, basic, one line).
"""

from __future__ import annotations

import math
import re

from llm_router.classifiers.base import TASKS, Classification, Classifier, Turn

_I = re.IGNORECASE

_TASK_PATTERNS: dict[str, list[tuple[re.Pattern[str], float]]] = {
    "code_generation": [
        (re.compile(r"```|\bdef \w+\(|\bclass \w+[:(]|#include|=>|\};", _I), 2.5),
        (
            re.compile(
                r"\b(write|implement|create|build|fix|debug|refactor)\b.{0,40}"
                r"\b(function|class|script|program|code|method|api|endpoint|"
                r"query|regex|test|module|algorithm)\b",
                _I,
            ),
            3.0,
        ),
        (
            re.compile(
                r"\b(python|javascript|typescript|java|rust|golang|c\+\+|sql|"
                r"bash|kotlin|swift|ruby|php|html|css|react|numpy|pandas)\b",
                _I,
            ),
            1.5,
        ),
        (re.compile(r"\b(fizzbuzz|stack trace|exception|compile|bug)\b", _I), 1.5),
    ],
    "math_reasoning": [
        (
            re.compile(
                r"\b(solve|calculate|compute|how many|how much|what is the "
                r"(sum|product|value)|equation|integral|derivative|prove|"
                r"probability|percent)\b",
                _I,
            ),
            2.0,
        ),
        (re.compile(r"\d+\s*[-+*/^=x\u00d7\u00f7]\s*\d+|\$\d|\d+%"), 1.5),
        (re.compile(r"\b(math|algebra|geometry|arithmetic|theorem)\b", _I), 1.5),
    ],
    "summarization": [
        (
            re.compile(
                r"\b(summari[sz]e|summary|tl;?dr|key points|main points|"
                r"in (a few|one|two|three) sentences?|condense|recap)\b",
                _I,
            ),
            3.5,
        ),
    ],
    "rewrite": [
        (
            re.compile(
                r"\b(rewrite|rephrase|paraphrase|reword|proofread|make it|"
                r"shorter|more (formal|casual|concise|polite)|simplify|"
                r"translate|fix (the )?(grammar|spelling|typos))\b",
                _I,
            ),
            3.0,
        ),
    ],
    "classification": [
        (
            re.compile(
                r"\b(classify|categori[sz]e|label|sentiment|is this .{0,30}"
                r"(positive|negative|spam)|which category|tag)\b",
                _I,
            ),
            3.0,
        ),
    ],
    "extraction": [
        (
            re.compile(
                r"\b(extract|pull out|list all|find all|identify (the|all)|"
                r"names? mentioned|parse out|which (dates|names|entities))\b",
                _I,
            ),
            3.0,
        ),
    ],
    "brainstorming": [
        (
            re.compile(
                r"\b(brainstorm|ideas?|suggestions?|come up with|list of ways|"
                r"alternatives|names for|what are some)\b",
                _I,
            ),
            2.5,
        ),
    ],
    "text_generation": [
        (
            re.compile(
                r"\b(write|compose|draft|create)\b.{0,40}\b(story|poem|essay|"
                r"email|letter|blog|post|article|speech|song|description|"
                r"cover letter|tweet)\b",
                _I,
            ),
            3.0,
        ),
    ],
    "chatbot": [
        (
            re.compile(
                r"^\s*(hi|hello|hey|thanks|thank you|good (morning|evening)|"
                r"how are you|what's up)\b",
                _I,
            ),
            3.0,
        ),
        (re.compile(r"\b(let's chat|talk to me|i feel|i'm feeling)\b", _I), 2.0),
    ],
    "closed_qa": [
        (
            re.compile(
                r"\b(according to|based on|given the (text|passage|context)|"
                r"in the (passage|text|article|document)|from the text)\b",
                _I,
            ),
            3.0,
        ),
    ],
    "open_qa": [
        (
            re.compile(
                r"\b(design|architect|plan)\b.{0,60}\b(system|service|platform|"
                r"architecture|pipeline|infrastructure|store|database|cache|"
                r"queue|network|cluster)\b",
                _I,
            ),
            3.0,
        ),
        (
            re.compile(
                r"^\s*(what|why|how|who|when|where|which|is|are|can|does|do|"
                r"explain|describe)\b",
                _I,
            ),
            1.2,
        ),
        (re.compile(r"\?\s*$"), 0.8),
    ],
    "other": [],
}

_HARD = re.compile(
    r"\b(design|architect\w*|distributed|scal(able|ability|e to)|concurren\w*|"
    r"fault[- ]toleran\w*|consensus|optimi[sz]\w*|prove|proof|derive|"
    r"trade-?offs?|in depth|rigorous|production|multi-?step|complexity "
    r"analysis|edge cases|security|latency|throughput|replicat\w*|"
    r"partition\w*|theorem|formal)\b",
    _I,
)
_EASY = re.compile(
    r"\b(simple|basic|quick(ly)?|short|fizzbuzz|hello world|beginner|easy|"
    r"one (line|sentence|word)|briefly|trivial)\b",
    _I,
)
_CONSTRAINT = re.compile(
    r"\b(must|should|at least|at most|without|ensure|exactly|only|"
    r"no more than|step by step)\b",
    _I,
)
_FOLLOW_UP = re.compile(
    r"\b(it|this|that|them|those|again|instead)\b|^(now|and|also|make)\b", _I
)
_BASE_SCORE = 0.5  # every task keeps a little mass
_TEMPERATURE = 1.0


class RulesClassifier(Classifier):
    """Keyword-and-structure classifier; microseconds, no dependencies."""

    name = "rules"

    def classify(self, turn: Turn) -> Classification:
        text = turn.text[:4000]
        scores = {task: _BASE_SCORE for task in TASKS}
        for task, patterns in _TASK_PATTERNS.items():
            for pattern, weight in patterns:
                if pattern.search(text):
                    scores[task] += weight
        words = len(text.split())
        if turn.context and words <= 12 and _FOLLOW_UP.search(text):
            scores["rewrite"] += 2.5
        if max(scores.values()) <= _BASE_SCORE:
            scores["other"] += 1.5 if words < 3 else 0.0
            scores["open_qa"] += 0.7
        return Classification(
            probabilities=_softmax([scores[task] for task in TASKS]),
            complexity=_complexity(text, words),
        )


def _softmax(scores: list[float]) -> tuple[float, ...]:
    top = max(scores)
    exps = [math.exp((s - top) / _TEMPERATURE) for s in scores]
    total = sum(exps)
    return tuple(e / total for e in exps)


def _complexity(text: str, words: int) -> float:
    score = 0.3
    score += 0.06 * math.log1p(words / 40)
    score += min(0.5, 0.14 * len(_HARD.findall(text)))
    score -= min(0.3, 0.18 * len(_EASY.findall(text)))
    score += min(0.12, 0.03 * len(_CONSTRAINT.findall(text)))
    if words < 12:
        score -= 0.05
    return min(1.0, max(0.0, score))
