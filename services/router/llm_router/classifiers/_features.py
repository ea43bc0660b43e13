"""Turn a turn into sparse TF-IDF features, the same way at training and serving.

The trainer (`services/router/training/train.py`) and the runtime
(`classifiers/learned.py`) both call `extract_features` and `Vectorizer`, so
a prediction made while training and one made while serving see identical
inputs. Everything here is plain Python and numpy: no scikit-learn, no scipy.

A feature is a 64-bit key: a stable hash of its namespace and its value,
looked up in a sorted array of the keys the trainer kept. Keys instead of
feature strings keep the vocabulary out of Python objects (120,000 strings
in a dict held ~20 MB per process). The namespaces:
- word unigrams and bigrams of the turn (a Chinese, Japanese or Korean
  character counts as a word);
- the first three words and the last word, and the first and last ten words,
  because an instruction usually opens or closes a prompt while pasted
  material (a review, an article) fills the middle and should not decide the
  task;
- coarse shape buckets: length, lines, digits, code and maths markers,
  answer choices, a closing question mark;
- for a follow-up, the words of the earlier turns and markers that say a
  short turn follows a longer exchange.

Character 3- and 4-grams were features too; once the assisted training rows
arrived they no longer raised held-out accuracy, while they were 70% of the
keys and most of the time (docs/classifier.md has the comparison).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# Long prompts are cut to a head and a tail: the instruction is at one end or
# the other, and bounding the text bounds the decision time.
HEAD_CHARS = 800
TAIL_CHARS = 300
CONTEXT_CHARS = 600
INSTRUCTION_WORDS = 10

Keys = npt.NDArray[np.uint64]

# Chinese, Japanese and Korean characters are words of their own (as BERT
# splits them): those scripts put no spaces between words, so a run of them
# would otherwise be one word seen nowhere else.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+|[^\\w\\s]")
# Code and maths markers are counted with literal searches and patterns that
# start with a literal or a digit: an alternation of unanchored patterns made
# `re` try every alternative at every position (~50 us per chat prompt).
_CODE_LITERALS = (
    "```", "def ", "function", "return", "import ", "#include", "=>", "::",
    "const ", "var ", "public ", "SELECT",
)  # fmt: skip
_CODE_LINE_END = re.compile(r"[{};][ \t]*$", re.MULTILINE)
_CODE_INDENT = re.compile(r"^[ \t]{2,}\S", re.MULTILINE)
_MATH_NUMERIC = re.compile(r"[\d$](?:(?<=\d)\s*(?:[-+*/^=<>]\s*\d|%)|(?<=\$)\s?\d)")
_MATH_POWER = re.compile(r"\^(?<=[a-z]\^)\d")
_MATH_VARIABLE = re.compile(r"x(?<=\bx)\s*[-+=]")
_HAS_DIGIT = re.compile(r"\d")
_DIGITS_RUN = re.compile(r"\d+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CHOICES = re.compile(r"^\s*\(?[A-Da-d][.)]\s", re.MULTILINE)


def _namespace(name: str) -> np.uint64:
    digest = hashlib.blake2b(name.encode(), digest_size=8, person=b"ns").digest()
    return np.uint64(int.from_bytes(digest, "little"))


# A feature's key is its value's hash plus its namespace's. Hashes are
# uniformly random 64-bit numbers, so two features' keys collide with odds of
# about one in 2**64: no mixing step is needed.
_WORD, _BIGRAM, _HEAD, _TAIL, _LAST, _SHAPE, _CONTEXT = (
    _namespace(name) for name in ("w", "b", "h", "t", "l", "s", "x")
)
_FIRST = tuple(_namespace(f"f{i}") for i in range(3))
_BIGRAM_FACTOR = np.uint64(0xC2B2AE3D27D4EB4F)


class _StringKeys(dict[str, int]):
    """Stable 64-bit hashes of strings, memoised (Python's `hash` is salted)."""

    LIMIT = 50_000

    def __missing__(self, text: str) -> int:
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
        key = int.from_bytes(digest, "little")
        if len(self) >= self.LIMIT:
            self.clear()
        self[text] = key
        return key


_STRING_KEYS = _StringKeys()


def _string_keys(strings: Sequence[str]) -> Keys:
    return np.fromiter(
        map(_STRING_KEYS.__getitem__, strings), dtype=np.uint64, count=len(strings)
    )


class _Buckets:
    """The name of a count's bucket: `words<=12`, ..., `words>250`."""

    def __init__(self, name: str, edges: Sequence[int]) -> None:
        self.edges = tuple(edges)
        self.names = (*(f"{name}<={edge}" for edge in edges), f"{name}>{edges[-1]}")

    def __call__(self, value: int) -> str:
        return self.names[bisect.bisect_left(self.edges, value)]


_WORDS = _Buckets("words", (1, 3, 6, 12, 25, 50, 100, 250))
_LINES = _Buckets("lines", (0, 2, 6, 15))
_DIGITS = _Buckets("digits", (0, 2, 5, 10))
_CODE_MARKERS = _Buckets("code", (0, 1, 3))
_MATH_MARKERS = _Buckets("math", (0, 1, 3))
_NUMBERS = _Buckets("numbers", (2, 3, 4, 5, 6, 8, 10))
_NUMERIC_WORDS = _Buckets("numeric-words", (20, 30, 40, 50, 60, 80, 100))
_SENTENCES = _Buckets("sentences", (1, 2, 3, 4, 5, 7))


@functools.lru_cache(maxsize=1024)
def _word_plan(n: int) -> tuple[npt.NDArray[np.intp], Keys]:
    """Which of a turn's `n` words go into which namespace, as one gather.

    Every word; the first three by position; the first and the last ten; the
    last one. One gather and one addition per turn instead of a numpy call
    per namespace (each costs about a microsecond).
    """
    ends = min(INSTRUCTION_WORDS, n)
    firsts = min(len(_FIRST), n)
    ranges = [(0, n), (0, firsts), (0, ends), (n - ends, n), (n - 1, n)]
    positions = np.concatenate([np.arange(a, b) for a, b in ranges]).astype(np.intp)
    offsets = np.asarray(
        [_WORD] * n + list(_FIRST[:firsts]) + [_HEAD] * ends + [_TAIL] * ends + [_LAST],
        dtype=np.uint64,
    )
    positions.setflags(write=False)
    offsets.setflags(write=False)
    return positions, offsets


def cut_text(text: str) -> str:
    """The head and tail of a long text, the whole of a short one."""
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]


def count_code_markers(text: str) -> int:
    """How many code markers (keywords, fences, line shapes) a text holds."""
    count = sum(text.count(literal) for literal in _CODE_LITERALS)
    if "\n" in text or text.rstrip().endswith(("{", "}", ";")):
        count += len(_CODE_LINE_END.findall(text))
        count += len(_CODE_INDENT.findall(text))
    return count


def _count_maths_markers(lowered: str, digits: int) -> int:
    count = len(_MATH_VARIABLE.findall(lowered))
    if digits:
        count += len(_MATH_NUMERIC.findall(lowered))
        if "^" in lowered:
            count += len(_MATH_POWER.findall(lowered))
    return count


def _shape(text: str, lowered: str, words: Sequence[str]) -> list[str]:
    digits = len(_DIGITS_RUN.findall(text)) if _HAS_DIGIT.search(text) else 0
    shapes = [
        _WORDS(len(words)),
        _LINES(text.count("\n")),
        _DIGITS(digits),
        _CODE_MARKERS(count_code_markers(text)),
        _MATH_MARKERS(_count_maths_markers(lowered, digits)),
    ]
    numbers = len(_NUMBER.findall(text)) if digits >= 2 else 0
    if numbers >= 2:
        # Word problems: how much there is to compute grows with the numbers
        # and the words around them (GSM8K solution length follows both).
        shapes += [
            _NUMBERS(numbers),
            _NUMERIC_WORDS(len(words)),
            _SENTENCES(text.count(". ")),
        ]
    if _CHOICES.search(text):
        shapes.append("choices")
    if text.rstrip().endswith("?"):
        shapes.append("question")
    return shapes


def extract_features(text: str, context: str = "") -> Keys:
    """The feature keys of a turn (repeats count as term frequency)."""
    text = cut_text(text)
    lowered = text.lower()
    words = _TOKEN.findall(lowered)
    shapes = _shape(text, lowered, words)
    parts = []
    if words:
        keys = _string_keys(words)
        positions, offsets = _word_plan(len(words))
        parts.append(keys[positions] + offsets)
        parts.append(keys[:-1] * _BIGRAM_FACTOR + keys[1:] + _BIGRAM)
    if context.strip():
        earlier = set(_TOKEN.findall(context[-CONTEXT_CHARS:].lower()))
        parts.append(_string_keys(sorted(earlier)) + _CONTEXT)
        shapes.append("follow-up")
        if len(words) <= 12:
            shapes.append("short-follow-up")
        if count_code_markers(context):
            shapes.append("follow-up-code")
    parts.append(_string_keys(shapes) + _SHAPE)
    return np.concatenate(parts)


@dataclass(frozen=True)
class SparseRows:
    """Feature rows in CSR layout: `indices`/`values` split by `offsets`."""

    indices: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    offsets: npt.NDArray[np.int64]

    @property
    def n_rows(self) -> int:
        """How many rows the batch holds."""
        return len(self.offsets) - 1


class Vectorizer:
    """Map feature keys to L2-normalised sublinear TF-IDF rows."""

    def __init__(self, keys: Keys, idf: npt.NDArray[np.float64]):
        keys = np.asarray(keys, dtype=np.uint64)
        if keys.shape != idf.shape or keys.ndim != 1:
            msg = (
                f"The vocabulary has {keys.size} keys but idf has {idf.size} "
                "weights; the artifact is inconsistent, retrain it."
            )
            raise ValueError(msg)
        if keys.size and not bool(np.all(keys[1:] > keys[:-1])):
            msg = "The vocabulary keys are not sorted and unique; retrain it."
            raise ValueError(msg)
        self.keys = keys
        self.idf = np.asarray(idf, dtype=np.float64)

    @property
    def size(self) -> int:
        """How many features the vocabulary holds."""
        return int(self.keys.size)

    def transform_one(
        self, features: Keys
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """One row as sorted column indices and normalised weights."""
        if not self.keys.size or not features.size:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        # Unique keys first: fewer, and sorted, which makes the search cheaper.
        unique, counts = np.unique(features, return_counts=True)
        positions = self.keys.searchsorted(unique)
        positions[positions == self.keys.size] = 0
        hit = self.keys[positions] == unique
        columns, counts = positions[hit], counts[hit]
        weights = (1.0 + np.log(counts)) * self.idf[columns]
        norm = float(np.sqrt(np.dot(weights, weights)))
        if norm > 0:
            weights /= norm
        return columns.astype(np.int64), weights

    def transform(self, rows: Sequence[Keys]) -> SparseRows:
        """Many rows in CSR layout."""
        parts = [self.transform_one(features) for features in rows]
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([len(columns) for columns, _ in parts], out=offsets[1:])
        if not parts:
            return SparseRows(np.zeros(0, np.int64), np.zeros(0), offsets)
        return SparseRows(
            indices=np.concatenate([columns for columns, _ in parts]),
            values=np.concatenate([weights for _, weights in parts]),
            offsets=offsets,
        )
