"""Smoke test of the benchmark harness: the quick mode runs end to end.

It checks that the harness works (real upstream, real router process, real
load, a report and a plot), not that the figures meet any target. LiteLLM is
left out by pointing the harness at an absent virtualenv, which keeps this
fast and free of LiteLLM; the full run covers that path.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_quick(out: Path, venv: Path) -> subprocess.CompletedProcess[str]:
    """The documented quick command, with results written under `out`."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--quick",
            "--duration",
            "0.3",
            "--out",
            str(out),
            "--litellm-venv",
            str(venv),
            # Pinned so the smoke test does not depend on a trained artifact.
            "--classifier",
            "rules",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def quick_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One quick run shared by the tests of this module; yields it and its folder."""
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "results"
    done = run_quick(out, tmp / "no-litellm-venv")
    assert done.returncode == 0, done.stdout + done.stderr
    return done, out


def test_quick_run_measures_direct_and_router_and_skips_absent_litellm(
    quick_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, out = quick_run

    assert "LiteLLM skipped: its virtualenv" in done.stdout, done.stdout
    results = orjson.loads((out / "results.json").read_bytes())
    cells = results["cells"]
    assert {c["path"] for c in cells} == {"direct", "router"}, cells
    assert {(c["stream"], c["concurrency"]) for c in cells} == {
        (False, 1),
        (False, 8),
        (True, 1),
        (True, 8),
    }
    for cell in cells:
        assert cell["requests"] > 0, cell
        assert cell["errors"] == 0, cell
        assert 0 < cell["p50"] <= cell["p95"] <= cell["p99"], cell
        if cell["stream"]:
            assert 0 < cell["ttft_p50"] <= cell["p50"], cell
        if cell["path"] == "router":
            # /proc ticks are 10 ms: a short run may round to zero, never NaN.
            assert cell["cpu_ms_per_request"] >= 0, cell

    memory = {m["path"]: m for m in results["memory"]}
    assert memory["router"]["after_load_mb"] > 10, memory
    rules = next(d for d in results["decision"] if d["classifier"] == "rules")
    assert rules["samples"] > 0, rules
    assert 0 < rules["p50_ms"] <= rules["p99_ms"], rules
    assert results["meta"]["servers"]["router"]["pid_libraries"]["uvloop"], results
    logged = results["meta"]["servers"]["router access log at 0 ms"]
    assert logged["routed"] > 0, logged
    assert logged["cache_hits"] == 0, "prompts repeated: the cache answered"


def test_quick_run_router_accounts_streamed_usage_from_the_bench_upstream(
    quick_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, out = quick_run

    records = [
        orjson.loads(line)
        for line in (out / "router.log").read_bytes().splitlines()
        if line.startswith(b'{"request_id"')
    ]
    streamed = [r for r in records if r["stream"]]
    assert streamed, "the router logged no streamed request"
    assert all(r["status"] == 200 for r in records), records[:3]
    assert all(r["input_tokens"] == 42 for r in streamed), streamed[:3]
    assert all(r["output_tokens"] == 12 for r in streamed), streamed[:3]


def test_quick_report_has_the_tables_and_a_png_plot(
    quick_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, out = quick_run

    text = (out / "benchmarks.md").read_text(encoding="utf-8")
    assert "<!-- bench:results:start -->" in text
    assert "| router: added latency, c=1, p50 | <= 1.5 ms |" in text, text
    assert "### Decision latency" in text, text
    assert "uv run python -m bench.run --quick" in text, text
    png = (out / "benchmarks.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n"), png[:8]
    assert len(png) > 10_000, len(png)
    added = [
        line for line in text.splitlines() if line.startswith("| plain | 1 | router |")
    ]
    assert added, text
    assert not math.isnan(float(added[0].split("|")[8])), added
