"""Train the learned classifier and write the artifact the router serves.

One command, deterministic (seeded sampling, a deterministic solver, sorted
vocabulary), from the repository root:

    uv run python services/router/training/train.py

It reads the shared prompts (`../shared/data/prompts/`), the MMLU routing
outcomes and the hand-written rows in `services/router/training/data/`, and
writes `learned.npz` and `learned.json` next to the committed static MiniLM
table in `services/router/llm_router/classifiers/artifacts/`. `--data FILE`
trains on one JSON-lines file instead (rows with `id`, `text`, `task`, and
optional `context`, `complexity`), which is how the tests train on a fixture;
`--predictions FILE` writes the trainer's own predictions for those rows so
the runtime can be checked against them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import trainlib

from llm_router.classifiers.base import TASKS

ARTIFACT_DIR = trainlib.STATIC_TABLE.parent


def main(argv: Sequence[str] | None = None) -> int:
    """Train on the shared and hand-written data (or one file) and export."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=trainlib.DEFAULT_SHARED_DIR)
    parser.add_argument("--data", type=Path, help="train on this JSON-lines file only")
    parser.add_argument("--output", type=Path, default=ARTIFACT_DIR)
    parser.add_argument("--no-embedding", action="store_true")
    parser.add_argument("--cap", type=int, default=trainlib.DEFAULT_CAP)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--predictions", type=Path, help="write trainer predictions")
    args = parser.parse_args(argv)

    config = trainlib.Config(use_embedding=not args.no_embedding)
    config = config.with_settings(args.set)
    if args.data is not None:
        rows = trainlib.load_handwritten(args.data)
        sources = {"file": args.data.name}
    else:
        rows = (
            trainlib.load_shared_rows(args.shared, cap=args.cap)
            + trainlib.load_outcome_rows(args.shared)
            + trainlib.load_own_training()
        )
        sources = trainlib.count_by(r.source for r in rows)
    embedder = trainlib.load_static_table() if config.use_embedding else None

    started = time.perf_counter()
    model = trainlib.fit(rows, config, embedder)
    elapsed = time.perf_counter() - started
    metadata = {
        "trained_rows": sources,
        "task_rows": trainlib.count_by(r.task for r in rows if r.task),
        "cap_per_source_task": args.cap if args.data is None else None,
        "vocabulary_size": model.space.vectorizer.size if model.space.vectorizer else 0,
    }
    path = trainlib.export(model, args.output, metadata)
    if embedder is not None and args.output.resolve() != ARTIFACT_DIR.resolve():
        shutil.copyfile(trainlib.STATIC_TABLE, args.output / trainlib.STATIC_TABLE.name)
    print(f"trained on {len(rows)} rows in {elapsed:.1f} s; wrote {path}")

    if args.predictions is not None:
        probabilities, complexity = model.predict(rows)
        with args.predictions.open("w", encoding="utf-8") as handle:
            for row, p, c in zip(rows, probabilities, complexity, strict=True):
                record = {
                    "id": row.id,
                    "probabilities": dict(zip(TASKS, p.tolist(), strict=True)),
                    "complexity": float(c),
                }
                handle.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
