"""docs/metrics.md and the code name the same metrics, labels, units and fields."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from llm_router.settings import Settings
from llm_router.telemetry.emf import DEFAULT_NAMESPACE, DIMENSION_SETS, METRIC_UNITS
from llm_router.telemetry.metrics import Metrics
from llm_router.telemetry.records import RequestRecord

DOC = Path(__file__).parents[2] / "docs" / "metrics.md"
_SUFFIX = {"counter": "_total", "histogram": "", "gauge": ""}


def read_section(heading: str) -> str:
    """The text of one `## ` section of the doc."""
    text = DOC.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.MULTILINE)
    for section in sections:
        if section.startswith(heading):
            return section
    msg = f"docs/metrics.md has no section starting {heading!r}"
    raise AssertionError(msg)


def read_rows(section: str) -> list[list[str]]:
    """Table rows whose first cell is a code span, as lists of cells."""
    rows = []
    for line in section.splitlines():
        if line.startswith("| `"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def read_codes(cell: str) -> list[str]:
    """The code spans in a table cell, in order."""
    return re.findall(r"`([^`]+)`", cell)


def test_every_prometheus_metric_is_documented_with_its_type_and_labels() -> None:
    metrics = Metrics()
    in_code = {
        f"{m._name}{_SUFFIX[m._type]}": (m._type, list(m._labelnames))
        for m in vars(metrics).values()
        if isinstance(m, MetricWrapperBase)
    }

    rows = read_rows(read_section("Prometheus"))
    in_doc = {read_codes(r[0])[0]: (r[1], read_codes(r[2])) for r in rows}

    missing = sorted(set(in_code) - set(in_doc))
    stale = sorted(set(in_doc) - set(in_code))
    assert not missing, f"add to docs/metrics.md: {missing}"
    assert not stale, f"remove from docs/metrics.md (not in metrics.py): {stale}"
    for name, (kind, labels) in in_code.items():
        assert in_doc[name] == (kind, labels), f"{name}: doc {in_doc[name]}"


def test_every_documented_prometheus_sample_is_exported() -> None:
    exported = Metrics().names()
    rows = read_rows(read_section("Prometheus"))

    for row in rows:
        name, kind = read_codes(row[0])[0], row[1]
        sample = f"{name}_count" if kind == "histogram" else name
        assert sample in exported, f"{sample} is documented but not exported"


def test_the_emf_namespace_dimensions_and_units_match_the_writer() -> None:
    section = read_section("CloudWatch Embedded Metric Format")

    namespace = re.search(r"Namespace: `([^`]+)`", section)
    assert namespace is not None, "the EMF section must name the namespace"
    assert namespace.group(1) == DEFAULT_NAMESPACE == Settings().emf_namespace

    rows = read_rows(section)
    dimension_sets = [tuple(read_codes(r[0])) for r in rows if len(r) == 1]
    assert dimension_sets == list(DIMENSION_SETS)

    units = {read_codes(r[0])[0]: r[1] for r in rows if len(r) > 1}
    assert units == METRIC_UNITS


def test_every_log_line_field_is_documented_in_order() -> None:
    rows = read_rows(read_section("The per-request log line"))

    documented = [read_codes(r[0])[0] for r in rows]

    assert documented == [f.name for f in dataclasses.fields(RequestRecord)]
