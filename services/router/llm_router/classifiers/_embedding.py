"""A static sentence embedding: WordPiece tokens looked up in a fixed table.

The table is a model2vec-style static model distilled offline from MiniLM
(see `services/router/training/README.md`): one vector per WordPiece token,
so embedding a prompt is a tokenisation and a mean, with no neural network at
serving time. The tokeniser is a small pure-Python WordPiece (BERT uncased
rules: lowercase, strip accents, split on whitespace and punctuation, greedy
longest match with `##` continuations). Training and serving both use this
module, so they agree by construction.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from llm_router.classifiers._features import cut_text

MAX_WORD_CHARS = 100
MAX_TOKENS = 512
_WORD_CACHE_SIZE = 50_000


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


# ASCII text (most prompts) takes one regex instead of a loop over characters:
# runs of letters and digits, and every other visible character on its own,
# which is what the loop below yields for ASCII input.
_ASCII_WORDS = re.compile(r"[a-z0-9\x7f]+|[^a-z0-9\x7f\s\x00-\x1f]")


def split_words(text: str) -> list[str]:
    """Lowercased, accent-stripped words and single punctuation marks."""
    if text.isascii():
        return _ASCII_WORDS.findall(text.lower())
    text = unicodedata.normalize("NFD", text.lower())
    words: list[str] = []
    current: list[str] = []
    for char in text:
        if unicodedata.category(char) == "Mn":
            continue
        if char.isspace() or ord(char) < 32:
            if current:
                words.append("".join(current))
                current = []
        elif _is_punctuation(char):
            if current:
                words.append("".join(current))
                current = []
            words.append(char)
        else:
            current.append(char)
    if current:
        words.append("".join(current))
    return words


class StaticEmbedder:
    """Mean of per-token vectors, L2-normalised, for a batch of texts."""

    def __init__(
        self, vocabulary: Sequence[str], vectors: npt.NDArray[np.floating[Any]]
    ):
        if len(vocabulary) != vectors.shape[0]:
            msg = (
                f"Embedding vocabulary has {len(vocabulary)} tokens but the table "
                f"has {vectors.shape[0]} rows; the artifact is inconsistent."
            )
            raise ValueError(msg)
        self.index = {token: i for i, token in enumerate(vocabulary)}
        # Stored as float16, held as float32 (15 MB): numpy sums float16 rows
        # ~4x slower than float32 ones, and float64 would cost 15 MB more.
        # Widening float16 to float32 is exact.
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.dim = int(self.vectors.shape[1])
        self._cache: dict[str, tuple[int, ...]] = {}

    def tokenize(self, text: str) -> list[int]:
        """WordPiece token ids of a text; unknown words are dropped."""
        ids: list[int] = []
        cache = self._cache
        for word in split_words(cut_text(text)):
            pieces = cache.get(word)
            if pieces is None:
                pieces = self._split_word(word)
                if len(cache) < _WORD_CACHE_SIZE:
                    cache[word] = pieces
            ids.extend(pieces)
            if len(ids) >= MAX_TOKENS:
                return ids[:MAX_TOKENS]
        return ids

    def _split_word(self, word: str) -> tuple[int, ...]:
        if len(word) > MAX_WORD_CHARS:
            return ()
        index = self.index
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = index.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return ()
            pieces.append(found)
            start = end
        return tuple(pieces)

    def embed_one(self, text: str) -> npt.NDArray[np.float64] | None:
        """The normalised embedding of one text, None when it has no tokens."""
        ids = self.tokenize(text)
        if not ids:
            return None
        total = self.vectors.take(ids, axis=0).sum(axis=0, dtype=np.float64)
        norm = float(np.sqrt(np.dot(total, total)))
        return total / norm if norm > 0 else None

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """One normalised embedding per text (zeros for a text with no tokens)."""
        result = np.zeros((len(texts), self.dim), dtype=np.float64)
        for row, text in enumerate(texts):
            vector = self.embed_one(text)
            if vector is not None:
                result[row] = vector
        return result
