"""Turn a turn into sparse TF-IDF features, the same way at training and serving.

The trainer (`services/router/training/train.py`) and the runtime
(`classifiers/learned.py`) both call `extract_features` and `Vectorizer`, so
a prediction made while training and one made while serving see identical
inputs. Everything here is plain Python and numpy: no scikit-learn, no scipy.

Features are strings looked up in a fixed vocabulary:
- word unigrams and bigrams of the turn (`w:`, `b:`);
- the first three words and the last word (`f0:`..`f2:`, `l:`), and the
  first and last ten words (`h:`, `t:`), because an instruction usually opens
  or closes a prompt while pasted material (a review, an article) fills the
  middle and should not decide the task;
- character 3- and 4-grams inside words of the turn's head (`c:`), which catch
  code syntax and word stems the word features miss;
- coarse shape buckets: length, lines, digits, code markers, question mark
  (`s:`);
- for a follow-up, the words of the earlier turns (`x:`) and markers that say
  a short turn follows a longer exchange.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# Long prompts are cut to a head and a tail: the instruction is at one end or
# the other, and bounding the text bounds the decision time.
HEAD_CHARS = 800
TAIL_CHARS = 300
CHAR_GRAM_CHARS = 200
CONTEXT_CHARS = 600
INSTRUCTION_WORDS = 10

_TOKEN = re.compile(r"[^\W_]+|[^\w\s]")
_CODE = re.compile(
    r"```|\bdef |\bfunction\b|\breturn\b|[{};]\s*$|\bimport |#include|=>|::|"
    r"\bconst |\bvar |\bpublic |\bSELECT\b|^\s{2,}\S",
    re.MULTILINE,
)
_MATH = re.compile(r"\d\s*[-+*/^=<>]\s*\d|\d\s*%|\$\s?\d|[a-z]\^\d|\bx\s*[-+=]")
_DIGIT = re.compile(r"\d+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CHOICES = re.compile(r"^\s*\(?[A-Da-d][.)]\s", re.MULTILINE)


def _bucket(name: str, value: int, edges: Sequence[int]) -> str:
    for edge in edges:
        if value <= edge:
            return f"s:{name}<={edge}"
    return f"s:{name}>{edges[-1]}"


def cut_text(text: str) -> str:
    """The head and tail of a long text, the whole of a short one."""
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]


def extract_features(text: str, context: str = "") -> list[str]:
    """The feature strings of a turn (repeats count as term frequency)."""
    text = cut_text(text)
    lowered = text.lower()
    words = _TOKEN.findall(lowered)
    features = [f"w:{w}" for w in words]
    features += [f"b:{a} {b}" for a, b in itertools.pairwise(words)]
    features += [f"f{i}:{w}" for i, w in enumerate(words[:3])]
    features += [f"h:{w}" for w in words[:INSTRUCTION_WORDS]]
    features += [f"t:{w}" for w in words[-INSTRUCTION_WORDS:]]
    if words:
        features.append(f"l:{words[-1]}")
    for word in lowered[:CHAR_GRAM_CHARS].split():
        padded = f" {word} "
        size = len(padded)
        features += [f"c:{padded[i : i + 3]}" for i in range(size - 2)]
        features += [f"c:{padded[i : i + 4]}" for i in range(size - 3)]

    features.append(_bucket("words", len(words), (1, 3, 6, 12, 25, 50, 100, 250)))
    features.append(_bucket("lines", text.count("\n"), (0, 2, 6, 15)))
    features.append(_bucket("digits", len(_DIGIT.findall(text)), (0, 2, 5, 10)))
    features.append(_bucket("code", len(_CODE.findall(text)), (0, 1, 3)))
    features.append(_bucket("math", len(_MATH.findall(lowered)), (0, 1, 3)))
    numbers = len(_NUMBER.findall(text))
    if numbers >= 2:
        # Word problems: how much there is to compute grows with the numbers
        # and the words around them (GSM8K solution length follows both).
        features.append(_bucket("numbers", numbers, (2, 3, 4, 5, 6, 8, 10)))
        features.append(
            _bucket("numeric-words", len(words), (20, 30, 40, 50, 60, 80, 100))
        )
        features.append(_bucket("sentences", text.count(". "), (1, 2, 3, 4, 5, 7)))
    if _CHOICES.search(text):
        features.append("s:choices")
    if text.rstrip().endswith("?"):
        features.append("s:question")

    if context.strip():
        tail = context[-CONTEXT_CHARS:].lower()
        features += [f"x:{w}" for w in set(_TOKEN.findall(tail))]
        features.append("s:follow-up")
        if len(words) <= 12:
            features.append("s:short-follow-up")
        if _CODE.search(context):
            features.append("s:follow-up-code")
    return features


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
    """Map feature strings to L2-normalised sublinear TF-IDF rows."""

    def __init__(self, vocabulary: Sequence[str], idf: npt.NDArray[np.float64]):
        if len(vocabulary) != len(idf):
            msg = (
                f"Vocabulary has {len(vocabulary)} entries but idf has {len(idf)}; "
                "the artifact is inconsistent, retrain it."
            )
            raise ValueError(msg)
        self.vocabulary = list(vocabulary)
        self.index = {feature: i for i, feature in enumerate(self.vocabulary)}
        self.idf = np.asarray(idf, dtype=np.float64)

    def transform_one(
        self, features: Sequence[str]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """One row as sorted column indices and normalised weights."""
        found = [c for c in map(self.index.get, features) if c is not None]
        columns, counts = np.unique(
            np.asarray(found, dtype=np.int64), return_counts=True
        )
        weights = (1.0 + np.log(counts)) * self.idf[columns]
        norm = float(np.sqrt(np.dot(weights, weights)))
        if norm > 0:
            weights /= norm
        return columns, weights

    def transform(self, rows: Sequence[Sequence[str]]) -> SparseRows:
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


def multiply(
    rows: SparseRows, weights: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """`rows @ weights` for a dense (features x outputs) weight matrix."""
    outputs = weights.shape[1]
    result = np.zeros((rows.n_rows, outputs), dtype=np.float64)
    if rows.indices.size == 0:
        return result
    contributions = weights[rows.indices] * rows.values[:, None]
    starts = rows.offsets[:-1]
    filled = starts < rows.offsets[1:]
    sums = np.add.reduceat(contributions, starts[filled], axis=0)
    result[filled] = sums
    return result
