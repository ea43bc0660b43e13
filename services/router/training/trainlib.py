"""Training library for the learned classifier: data, fitting, export.

`train.py` (one command, the committed artifact) and `evaluate_heldout.py`
(held-out-source scores) both build on this module. Features come from
`llm_router.classifiers._features` and `_embedding`, the same code that serves
predictions, so the trainer and the runtime see identical inputs.

Two heads share one feature space (sparse TF-IDF plus, optionally, a static
MiniLM embedding):
- a multinomial logistic regression over the 12 tasks;
- a logistic regression on soft targets for complexity (each row is split
  into a positive copy weighted by its target and a negative copy weighted by
  one minus it), so the score is a probability-like number in [0, 1].
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression, Ridge

from llm_router.classifiers._embedding import StaticEmbedder
from llm_router.classifiers._features import Vectorizer, extract_features
from llm_router.classifiers.base import TASK_INDEX, TASKS
from llm_router.classifiers.learned import ARTIFACT_FORMAT

TRAINING_DIR = Path(__file__).resolve().parent
REPO_ROOT = TRAINING_DIR.parents[2]
DEFAULT_SHARED_DIR = REPO_ROOT.parent / "shared" / "data" / "prompts"
DATA_DIR = TRAINING_DIR / "data"
# Our own labelled free-form prompts (see data/README.md): training rows, and
# evaluation sets that are never trained on.
OWN_TRAIN = (DATA_DIR / "handwritten_train.jsonl", DATA_DIR / "assisted_train.jsonl")
OWN_EVAL = {
    "handwritten_eval": DATA_DIR / "handwritten_eval.jsonl",
    "assisted_eval": DATA_DIR / "assisted_eval.jsonl",
    "assisted_eval_2": DATA_DIR / "assisted_eval_2.jsonl",
}
STATIC_TABLE = (
    REPO_ROOT / "services/router/llm_router/classifiers/artifacts/static_minilm.npz"
)

# P3 prompt names start with their dataset's name; a held-out source is a
# whole dataset, with every template of it.
P3_FAMILIES = (
    "adversarial_qa", "ag_news", "amazon_polarity", "app_reviews",
    "cnn_dailymail", "commonsense_qa", "cos_e", "cosmos_qa", "dbpedia_14",
    "dream", "duorc", "gigaword", "glue_mrpc", "glue_qqp", "imdb",
    "kilt_tasks_hotpotqa", "multi_news", "qasc", "quail", "quarel", "quartz",
    "quoref", "ropes", "rotten_tomatoes", "samsum", "sciq", "social_i_qa",
    "trec", "wiki_bio", "wiki_hop", "wiki_qa", "wiqa", "xsum", "yelp_review_full",
)  # fmt: skip

# Complexity targets by source: GSM8K from its reference solution's length,
# MMLU from whether the weak and the strong model answered correctly, the
# hand-written rows from their hand label; templated NLP prompts are easy.
MMLU_TARGETS = {
    (True, True): 0.3,
    (True, False): 0.25,
    (False, False): 0.5,
    (False, True): 0.85,
}
MMLU_SUBJECT_TASKS = {
    "abstract_algebra": "math_reasoning",
    "elementary_mathematics": "math_reasoning",
    "high_school_mathematics": "math_reasoning",
}
MMLU_MIXED_SUBJECTS = frozenset(
    {
        "college_chemistry",
        "econometrics",
        "formal_logic",
        "high_school_chemistry",
        "high_school_physics",
        "machine_learning",
        "professional_accounting",
    }
)
_BOOLEANS = {
    "true": True,
    "1": True,
    "yes": True,
    "false": False,
    "0": False,
    "no": False,
}
P3_COMPLEXITY = 0.3
DEFAULT_CAP = 400
MBPP_COMPLEXITY = 0.55


def gsm8k_complexity(steps: int) -> float:
    """Map a GSM8K solution length to a complexity target."""
    return min(0.95, 0.35 + 0.1 * max(0, steps - 2))


@dataclass(slots=True)
class Row:
    """One labelled prompt (task may be None for complexity-only rows)."""

    id: str
    text: str
    task: str | None
    source: str
    group: str
    complexity: float | None
    context: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Config:
    """Everything that changes the fitted model."""

    use_tfidf: bool = True
    use_embedding: bool = True
    # The static embedding informs complexity only: for tasks it added
    # nothing on held-out sources once our own rows were in (0.928 accuracy
    # on our evaluation sets either way), while it ranks unseen MMLU subjects
    # better (strong share 0.534 against 0.558 without it).
    task_embedding: bool = False
    embedding_scale: float = 1.0
    min_df: int = 2
    max_features: int = 120_000
    task_c: float = 8.0
    complexity_c: float = 4.0
    handwritten_boost: float = 40.0
    math_alpha: float = 3.0
    math_scale: float = 1.0
    seed: int = 13

    def with_settings(self, items: Iterable[str]) -> Config:
        """A copy with `key=value` settings applied (`--set` on the command line)."""
        config = self
        for item in items:
            key, sep, value = item.partition("=")
            names = [f.name for f in dataclasses.fields(self)]
            if not sep or key not in names:
                msg = f"Unknown setting {item!r}; use KEY=VALUE with KEY one of: "
                raise SystemExit(msg + ", ".join(names))
            kind = type(getattr(self, key))
            if kind is bool:
                if value.lower() not in _BOOLEANS:
                    msg = f"Setting {key} takes true or false, not {value!r}."
                    raise SystemExit(msg)
                parsed: Any = _BOOLEANS[value.lower()]
            else:
                parsed = kind(value)
            config = dataclasses.replace(config, **{key: parsed})
        return config

    def to_json(self) -> dict[str, Any]:
        """The config as stored in the artifact's metadata."""
        return {
            "use_tfidf": self.use_tfidf,
            "use_embedding": self.use_embedding,
            "task_embedding": self.task_embedding,
            "embedding_scale": self.embedding_scale,
            "min_df": self.min_df,
            "max_features": self.max_features,
            "task_c": self.task_c,
            "complexity_c": self.complexity_c,
            "handwritten_boost": self.handwritten_boost,
            "math_alpha": self.math_alpha,
            "math_scale": self.math_scale,
            "seed": self.seed,
        }


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every JSON object of a JSON-lines file."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def p3_family(source_label: str) -> str:
    """The dataset a P3 prompt name belongs to."""
    for family in P3_FAMILIES:
        if source_label.startswith(family):
            return family
    return source_label.split("_")[0]


def load_shared_rows(shared_dir: Path, cap: int | None = None) -> list[Row]:
    """Rows of the shared `train_dev.jsonl` with their held-out group.

    `cap` keeps at most that many rows per group and task (a seeded sample):
    the templated sources repeat themselves, and fewer rows train faster.
    """
    raws = read_jsonl(shared_dir / "train_dev.jsonl")
    if cap is not None:
        raws = _cap_groups(raws, cap)
    rows = []
    for raw in raws:
        source = raw["source"]
        if source.startswith("p3"):
            group, complexity = f"p3:{p3_family(raw['source_label'])}", P3_COMPLEXITY
        elif source.startswith("gsm8k"):
            group = "gsm8k"
            complexity = gsm8k_complexity(int(raw["solution_steps"]))
        elif source == "mbpp":
            group, complexity = "mbpp", MBPP_COMPLEXITY
        else:
            group, complexity = source, None
        rows.append(
            Row(
                id=raw["id"],
                text=raw["text"],
                task=raw["task"],
                source=source,
                group=group,
                complexity=complexity,
                extra={
                    "solution_steps": raw.get("solution_steps"),
                    "split": raw.get("split"),
                },
            )
        )
    return rows


def _cap_groups(raws: list[dict[str, Any]], cap: int) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for raw in raws:
        name = raw["source_label"] if raw["source"].startswith("p3") else raw["source"]
        key = (p3_family(name) if raw["source"].startswith("p3") else name, raw["task"])
        groups.setdefault(key, []).append(raw)
    rng = np.random.default_rng(0)
    kept = []
    for key in sorted(groups):
        members = groups[key]
        # Every GSM8K row is kept: the maths complexity term learns solution
        # length from them, and it needs more than a few hundred.
        if len(members) > cap and key[0] != "gsm8k_train":
            chosen = sorted(rng.choice(len(members), size=cap, replace=False))
            members = [members[i] for i in chosen]
        kept += members
    return kept


def load_outcome_rows(shared_dir: Path) -> list[Row]:
    """MMLU rows with weak/strong outcomes; some subjects also get a task.

    A multiple-choice knowledge question with no passage is `open_qa`, a
    pure mathematics one `math_reasoning`. Subjects that mix calculation and
    knowledge (physics, chemistry, accounting, logic, ...) train only the
    complexity head, because either task would be a fair label.
    """
    rows = []
    for raw in read_jsonl(shared_dir / "routing_outcomes_dev.jsonl"):
        weak, strong = bool(raw["weak_correct"]), bool(raw["strong_correct"])
        subject = raw["source_label"]
        task = MMLU_SUBJECT_TASKS.get(subject, "open_qa")
        rows.append(
            Row(
                id=raw["id"],
                text=raw["text"],
                task=None if subject in MMLU_MIXED_SUBJECTS else task,
                source="mmlu",
                group=f"mmlu:{raw['source_label']}",
                complexity=MMLU_TARGETS[(weak, strong)],
                extra={"weak_correct": weak, "strong_correct": strong},
            )
        )
    return rows


def load_own_training() -> list[Row]:
    """Every row of our own training files, as one `handwritten` source."""
    return [row for path in OWN_TRAIN for row in load_handwritten(path)]


def load_own_eval() -> list[Row]:
    """Every row of our own evaluation sets, each set its own source."""
    return [
        row for name, path in OWN_EVAL.items() for row in load_handwritten(path, name)
    ]


def load_handwritten(path: Path, source: str = "handwritten") -> list[Row]:
    """Our own labelled rows (a training or an evaluation file)."""
    return [
        Row(
            id=raw["id"],
            text=raw["text"],
            task=raw["task"],
            source=source,
            group=source,
            complexity=float(raw["complexity"]),
            context=raw.get("context", ""),
            extra={"solution_steps": raw.get("solution_steps")},
        )
        for raw in read_jsonl(path)
    ]


def load_static_table(path: Path = STATIC_TABLE) -> StaticEmbedder:
    """The committed static MiniLM token table."""
    with np.load(path, allow_pickle=False) as data:
        return StaticEmbedder(data["tokens"].tolist(), data["vectors"])


_FEATURE_CACHE: dict[tuple[str, str], npt.NDArray[np.uint64]] = {}
_EMBEDDING_CACHE: dict[tuple[str, str], npt.NDArray[np.float64]] = {}


def row_features(row: Row) -> npt.NDArray[np.uint64]:
    """The feature keys of a row, memoised across folds."""
    key = (row.text, row.context)
    found = _FEATURE_CACHE.get(key)
    if found is None:
        found = _FEATURE_CACHE[key] = extract_features(row.text, row.context)
    return found


class FeatureSpace:
    """Fitted vocabulary, idf and embedder: rows to a scipy matrix."""

    def __init__(
        self,
        config: Config,
        vectorizer: Vectorizer | None,
        embedder: StaticEmbedder | None,
    ) -> None:
        self.config = config
        self.vectorizer = vectorizer
        self.embedder = embedder

    @classmethod
    def fit(
        cls, config: Config, rows: Sequence[Row], embedder: StaticEmbedder | None
    ) -> FeatureSpace:
        """Choose the vocabulary (by document frequency) and idf from rows."""
        vectorizer = None
        if config.use_tfidf:
            df: Counter[int] = Counter()
            for row in rows:
                df.update(np.unique(row_features(row)).tolist())
            kept = [(f, n) for f, n in df.items() if n >= config.min_df]
            kept.sort(key=lambda pair: (-pair[1], pair[0]))
            kept = kept[: config.max_features]
            kept.sort()
            total = len(rows)
            keys = np.asarray([f for f, _ in kept], dtype=np.uint64)
            idf = np.asarray(
                [math.log((1 + total) / (1 + n)) + 1.0 for _, n in kept],
                dtype=np.float32,
            ).astype(np.float64)
            vectorizer = Vectorizer(keys, idf)
        return cls(config, vectorizer, embedder if config.use_embedding else None)

    @property
    def task_width(self) -> int | None:
        """Columns the task head reads (None: all); without `task_embedding`,
        the embedding informs only complexity."""
        if self.embedder is None or self.config.task_embedding:
            return None
        return self.vectorizer.size if self.vectorizer else 0

    def transform(self, rows: Sequence[Row]) -> sp.csr_matrix:
        """The design matrix: TF-IDF columns, then embedding columns."""
        blocks = []
        if self.vectorizer is not None:
            sparse = self.vectorizer.transform([row_features(row) for row in rows])
            blocks.append(
                sp.csr_matrix(
                    (sparse.values, sparse.indices, sparse.offsets),
                    shape=(len(rows), self.vectorizer.size),
                )
            )
        if self.embedder is not None:
            dense = embed_rows(self.embedder, rows) * self.config.embedding_scale
            blocks.append(sp.csr_matrix(dense))
        return sp.hstack(blocks, format="csr")


def embed_rows(
    embedder: StaticEmbedder, rows: Sequence[Row]
) -> npt.NDArray[np.float64]:
    """Embeddings of the turn and (at half weight) of its context, memoised."""
    missing = [r for r in rows if (r.text, r.context) not in _EMBEDDING_CACHE]
    if missing:
        texts = embedder.embed([row.text for row in missing])
        contexts = embedder.embed([row.context for row in missing])
        for row, text, context in zip(missing, texts, contexts, strict=True):
            _EMBEDDING_CACHE[(row.text, row.context)] = np.concatenate(
                [text, 0.5 * context]
            )
    return np.vstack([_EMBEDDING_CACHE[(r.text, r.context)] for r in rows])


def task_weights(rows: Sequence[Row], config: Config) -> npt.NDArray[np.float64]:
    """Balance tasks, then weight sources within each task.

    Our own rows (source `handwritten`, hand-written and assisted alike) get
    `handwritten_boost`; the many MMLU rows a quarter,
    so one benchmark's format does not crowd out the rest of `open_qa`.
    """
    per_source = {"handwritten": config.handwritten_boost, "mmlu": 0.25}
    raw = np.asarray([per_source.get(r.source, 1.0) for r in rows])
    weights = np.zeros(len(rows))
    tasks = np.asarray([r.task for r in rows])
    for task in set(tasks):
        mask = tasks == task
        weights[mask] = raw[mask] / raw[mask].sum()
    return weights * len(rows) / weights.sum()


def complexity_weights(rows: Sequence[Row], config: Config) -> npt.NDArray[np.float64]:
    """How much each source counts for the complexity head."""
    per_source = {"mmlu": 1.0, "gsm8k_train": 3.0, "mbpp": 0.5}
    return np.asarray(
        [
            config.handwritten_boost
            if r.source == "handwritten"
            else per_source.get(r.source, 0.15)
            for r in rows
        ]
    )


@dataclass(slots=True)
class TrainedModel:
    """A fitted feature space and both heads."""

    config: Config
    space: FeatureSpace
    task_head: LogisticRegression
    complexity_head: LogisticRegression
    math_coef: npt.NDArray[np.float64]
    math_intercept: float

    def predict(
        self, rows: Sequence[Row]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Task probabilities (columns in TASKS order) and complexity, by sklearn."""
        matrix = self.space.transform(rows)
        probabilities = np.zeros((len(rows), len(TASKS)))
        known = self.task_head.predict_proba(matrix[:, : self.space.task_width])
        for column, label in enumerate(self.task_head.classes_):
            probabilities[:, int(label)] = known[:, column]
        logit = self.complexity_head.decision_function(matrix)
        math = np.maximum(0.0, matrix @ self.math_coef + self.math_intercept)
        logit = logit + probabilities[:, TASK_INDEX["math_reasoning"]] * math
        complexity = 1.0 / (1.0 + np.exp(-logit))
        return probabilities, complexity


def fit(
    rows: Sequence[Row],
    config: Config,
    embedder: StaticEmbedder | None,
) -> TrainedModel:
    """Fit both heads; rows without a task train only the complexity head."""
    task_rows = [r for r in rows if r.task is not None]
    complexity_rows = [r for r in rows if r.complexity is not None]
    space = FeatureSpace.fit(config, task_rows, embedder)

    task_matrix = space.transform(task_rows)
    labels = np.asarray([TASK_INDEX[r.task] for r in task_rows if r.task])
    task_head = LogisticRegression(
        C=config.task_c, max_iter=500, tol=1e-4, random_state=config.seed
    )
    task_head.fit(
        task_matrix[:, : space.task_width],
        labels,
        sample_weight=task_weights(task_rows, config),
    )

    complexity_matrix = space.transform(complexity_rows)
    targets = np.asarray([r.complexity for r in complexity_rows], dtype=np.float64)
    base = complexity_weights(complexity_rows, config)
    doubled = sp.vstack([complexity_matrix, complexity_matrix], format="csr")
    doubled_labels = np.concatenate(
        [np.ones(len(targets), dtype=int), np.zeros(len(targets), dtype=int)]
    )
    doubled_weights = np.concatenate([base * targets, base * (1 - targets)])
    complexity_head = LogisticRegression(
        C=config.complexity_c, max_iter=500, tol=1e-4, random_state=config.seed
    )
    complexity_head.fit(doubled, doubled_labels, sample_weight=doubled_weights)

    math_coef, math_intercept = _fit_math_head(rows, space, config)
    for head in (task_head, complexity_head):
        # The artifact stores float32: predict with exactly those weights here
        # too, so trainer and runtime agree to float64 rounding.
        head.coef_ = head.coef_.astype(np.float32).astype(np.float64)
        head.intercept_ = head.intercept_.astype(np.float32).astype(np.float64)
    return TrainedModel(
        config,
        space,
        task_head,
        complexity_head,
        math_coef.astype(np.float32).astype(np.float64),
        float(np.float32(math_intercept)),
    )


def _fit_math_head(
    rows: Sequence[Row], space: FeatureSpace, config: Config
) -> tuple[npt.NDArray[np.float64], float]:
    """A ridge model of GSM8K solution length, added for maths turns.

    The shared complexity head ranks maths word problems no better than chance
    (their difficulty is how many steps they take, which MMLU outcomes do not
    teach), so maths turns get a second term: standardised predicted steps
    plus one, times `math_scale`, clipped at zero, weighted by the maths
    probability. Without GSM8K rows (a held-out fold) the term is zero.
    """
    gsm8k = [r for r in rows if r.extra.get("solution_steps") is not None]
    width = space.transform(rows[:1]).shape[1]
    if len(gsm8k) < 5:
        return np.zeros(width), 0.0
    steps = np.asarray([float(r.extra["solution_steps"]) for r in gsm8k])
    target = (steps - steps.mean()) / (steps.std() or 1.0)
    ridge = Ridge(alpha=config.math_alpha, random_state=config.seed)
    ridge.fit(space.transform(gsm8k), target)
    coef = np.asarray(ridge.coef_, dtype=np.float64) * config.math_scale
    # Shifted by one standard deviation and clipped at zero when applied, so
    # the term only ever raises a maths turn's complexity: ranking problems by
    # length must not drop short ones below the tier maths needs.
    return coef, (float(ridge.intercept_) + 1.0) * config.math_scale


def export(model: TrainedModel, directory: Path, metadata: dict[str, Any]) -> Path:
    """Write the artifact the runtime loads (`learned.npz` plus `learned.json`)."""
    directory.mkdir(parents=True, exist_ok=True)
    space = model.space
    vectorizer = space.vectorizer
    n_sparse = vectorizer.size if vectorizer else 0

    # The task head may read fewer columns than the complexity head (no
    # embedding); the columns it does not read get zero weight.
    task_coef = np.zeros((len(TASKS), model.complexity_head.coef_.shape[1]))
    width = model.task_head.coef_.shape[1]
    task_bias = np.full(len(TASKS), -1e4)
    classes = [int(c) for c in model.task_head.classes_]
    if len(classes) == 2:
        # sklearn keeps one row for two classes: logits are (-z, z).
        task_coef[classes[1], :width] = model.task_head.coef_[0]
        task_bias[classes[1]] = model.task_head.intercept_[0]
        task_bias[classes[0]] = 0.0
    else:
        for row, label in enumerate(classes):
            task_coef[label, :width] = model.task_head.coef_[row]
            task_bias[label] = model.task_head.intercept_[row]
    complexity_coef = model.complexity_head.coef_[0]

    # features x 14: task logits, the complexity logit, the maths term.
    weights = np.vstack(
        [task_coef, complexity_coef[None, :], model.math_coef[None, :]]
    ).T
    arrays: dict[str, Any] = {
        "sparse_weights": weights[:n_sparse].astype(np.float32),
        "dense_weights": weights[n_sparse:].astype(np.float32),
        "bias": np.concatenate(
            [task_bias, model.complexity_head.intercept_, [model.math_intercept]]
        ).astype(np.float32),
    }
    if vectorizer is not None:
        arrays["feature_keys"] = vectorizer.keys
        arrays["idf"] = vectorizer.idf.astype(np.float32)
    np.savez_compressed(directory / "learned.npz", **arrays)

    meta = {
        "format": ARTIFACT_FORMAT,
        "tasks": list(TASKS),
        "config": model.space.config.to_json(),
        "static_table": "static_minilm.npz" if space.embedder is not None else None,
        **metadata,
    }
    path = directory / "learned.json"
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def count_by(values: Iterable[str]) -> dict[str, int]:
    """A sorted count of values, for reports."""
    return dict(sorted(Counter(values).items()))
