"""The `llm-router` command line, run as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import write_policy
from llm_router.cli import main


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llm_router", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )


def test_route_prints_the_decision_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["route", "Summarize this report in two sentences: revenue grew."])

    decision = json.loads(capsys.readouterr().out)
    assert status == 0
    assert decision["task"] == "summarization"
    assert decision["tier"] == "small"
    assert decision["reason"]


def test_check_config_accepts_a_valid_policy_and_rejects_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    default = Path(__file__).parents[2] / (
        "services/router/llm_router/policy/default.yaml"
    )
    bad = write_policy(
        tmp_path,
        default.read_text().replace("math_reasoning: large", "math_reasoning: xl"),
    )

    assert main(["check-config", str(default)]) == 0
    assert "valid policy 'embedded-default'" in capsys.readouterr().out
    assert main(["check-config", str(bad)]) == 2
    assert (
        "Unknown tier 'xl' in routing.tasks.math_reasoning" in capsys.readouterr().err
    )


def test_classify_writes_one_line_per_input_line_with_the_contract_fields(
    tmp_path: Path,
) -> None:
    rows = [
        {"id": 1, "text": "Write a Python function to parse ISO dates."},
        {"id": "b", "text": "Summarize: the meeting moved to Friday."},
        {"id": 3, "text": "Make it shorter.", "context": "def f(): return 1"},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    result = _run("classify", "--jsonl", str(source))

    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0, result.stderr
    assert [line["id"] for line in lines] == [1, "b", 3]
    for line in lines:
        assert set(line) == {"id", "task", "complexity", "tier", "confidence"}
        assert 0 <= line["complexity"] <= 1
        assert line["tier"] in {"small", "medium", "large"}
    assert lines[0]["task"] == "code_generation"
    assert lines[1]["task"] == "summarization"


def test_classify_names_the_bad_line(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "text": "ok"}\n{"id": 2}\n')

    result = _run("classify", "--jsonl", str(source))

    assert result.returncode == 2
    assert "in.jsonl:2 needs a JSON object with `id` and a string `text`" in (
        result.stderr
    )


def test_classify_handles_thousands_of_lines(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    lines = (
        json.dumps({"id": i, "text": f"Question {i}: why do leaves change colour?"})
        for i in range(5000)
    )
    source.write_text("\n".join(lines))

    result = _run("classify", "--jsonl", str(source))

    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 5000
