"""`llm-router eval` on labelled fixtures: the report, the plots and bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from llm_router.cli import main

HERE = Path(__file__).parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_eval_prints_every_section_and_saves_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        ["eval", "--jsonl", str(HERE / "labelled.jsonl"), "--plots", str(tmp_path)]
    )

    out = capsys.readouterr().out
    assert status == 0, out
    assert "classifier: learned" in out
    accuracy = float(out.split("accuracy: ")[1].split()[0])
    assert 0.0 <= accuracy <= 1.0
    assert "macro-F1: " in out
    assert "precision" in out
    assert "recall" in out
    assert "confusion matrix (rows: gold task, columns: predicted task)" in out
    assert "tier distribution" in out
    assert "all-large" in out
    for name in ("confusion.png", "cost_quality.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert len(data) > 5_000, f"{name} looks empty"


def test_eval_accuracy_matches_the_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "two.jsonl"
    rows.write_text(
        '{"id": 1, "text": "hello there!", "task": "chatbot"}\n'
        '{"id": 2, "text": "Write a Python function to sort a list.", '
        '"task": "chatbot"}\n'
    )

    status = main(["eval", "--jsonl", str(rows), "--no-plots", "--classifier", "rules"])

    out = capsys.readouterr().out
    assert status == 0
    assert "classifier: rules" in out
    assert "accuracy: 0.5000" in out
    assert "rows: 2" in out


def test_eval_with_outcomes_reports_the_strong_share(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            "eval",
            "--jsonl",
            str(HERE / "outcomes.jsonl"),
            "--outcomes",
            "--plots",
            str(tmp_path),
        ]
    )

    out = capsys.readouterr().out
    assert status == 0, out
    assert "weak-only accuracy 0.6250, strong-only 0.7500" in out
    assert "strong share for 95% of strong-only quality:" in out
    assert (tmp_path / "cost_quality.png").read_bytes().startswith(PNG_MAGIC)


def test_eval_without_matplotlib_says_how_to_install_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A None entry makes `import matplotlib` raise ImportError, as when the
    # `eval` extra is not installed.
    monkeypatch.setitem(sys.modules, "matplotlib", None)

    status = main(
        ["eval", "--jsonl", str(HERE / "labelled.jsonl"), "--plots", str(tmp_path)]
    )

    assert status == 2
    assert "pip install 'llm-router[eval]'" in capsys.readouterr().err
    assert not (tmp_path / "confusion.png").exists()


@pytest.mark.parametrize(
    ("line", "flags", "message"),
    [
        ('{"id": 1, "text": "hi", "task": "poetry"}', [], "gold task 'poetry'"),
        ('{"id": 1, "text": "hi", "task": "chatbot"}', ["--outcomes"], "weak_correct"),
        ('{"id": 1}', [], "needs a JSON object with `id` and a string `text`"),
    ],
)
def test_eval_rejects_bad_rows_with_a_clear_message(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    line: str,
    flags: list[str],
    message: str,
) -> None:
    rows = tmp_path / "bad.jsonl"
    rows.write_text(line + "\n")

    status = main(["eval", "--jsonl", str(rows), "--no-plots", *flags])

    assert status == 2
    assert message in capsys.readouterr().err
