"""CloudWatch EMF records: structure per the EMF specification, values per request."""

from __future__ import annotations

import io
import logging
import time
from typing import Any

import openai
import orjson
import pytest

from helpers import serve_router
from llm_router.errors import ConfigError
from llm_router.telemetry.emf import METRIC_UNITS, EMFWriter
from llm_router.telemetry.metrics import Metrics
from llm_router.telemetry.records import Recorder, RequestRecord

# Units CloudWatch accepts (PutMetricData StandardUnit).
CLOUDWATCH_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
    "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits",
    "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second",
    "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
    "Count/Second", "None",
}  # fmt: skip
SECRET_PROMPT = "Summarise the quarterly numbers for project bluebird-7731."


def check_emf(doc: dict[str, Any]) -> dict[str, Any]:
    """Assert a document follows the EMF specification; return its directive."""
    meta = doc["_aws"]
    now_ms = time.time() * 1000
    assert isinstance(meta["Timestamp"], int), meta
    assert abs(meta["Timestamp"] - now_ms) < 60_000, meta["Timestamp"]
    (directive,) = meta["CloudWatchMetrics"]
    assert 1 <= len(directive["Namespace"]) <= 255, directive

    for dimension_set in directive["Dimensions"]:
        assert 1 <= len(dimension_set) <= 30, dimension_set
        for key in dimension_set:
            assert isinstance(doc[key], str), (key, doc.get(key))
            assert 1 <= len(doc[key]) <= 1024, (key, doc[key])
    assert 1 <= len(directive["Metrics"]) <= 100, directive
    for metric in directive["Metrics"]:
        assert metric["Unit"] in CLOUDWATCH_UNITS, metric
        value = doc[metric["Name"]]
        assert isinstance(value, int | float), (metric, value)
        assert not isinstance(value, bool), (metric, value)
    return dict(directive)


def emf_lines(text: str) -> list[dict[str, Any]]:
    """The EMF documents among captured stdout lines."""
    docs = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [doc for doc in docs if "_aws" in doc]


def make_record(**fields: Any) -> RequestRecord:
    """A finished chat request's record with realistic values."""
    values: dict[str, Any] = {
        "request_id": "req-1",
        "tier": "medium",
        "routed_tier": "medium",
        "task": "open_qa",
        "model": "amazon.nova-pro-v1:0",
        "provider": "bedrock",
        "decision_ms": 0.42,
        "upstream_ms": 812.5,
        "input_tokens": 120,
        "output_tokens": 380,
        "cost_usd": 0.001312,
    }
    values.update(fields)
    return RequestRecord(**values)


def test_a_routed_request_becomes_one_record_with_every_contract_metric() -> None:
    doc = orjson.loads(EMFWriter("LLMRouter").render(make_record(fallbacks=1)))

    directive = check_emf(doc)

    assert directive["Namespace"] == "LLMRouter"
    assert directive["Dimensions"] == [["Tier"], ["Tier", "Model"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == METRIC_UNITS
    assert doc["Tier"] == "medium"
    assert doc["Model"] == "amazon.nova-pro-v1:0"
    expected = {
        "Requests": 1,
        "Errors": 0,
        "Fallbacks": 1,
        "CacheHits": 0,
        "InputTokens": 120,
        "OutputTokens": 380,
        "CostUSD": 0.001312,
        "DecisionLatencyMs": 0.42,
        "UpstreamLatencyMs": 812.5,
    }
    assert {name: doc[name] for name in expected} == expected


def test_a_request_rejected_before_routing_counts_as_an_error_of_tier_none() -> None:
    rec = RequestRecord(request_id="bad", status=400, error="invalid_value")

    doc = orjson.loads(EMFWriter().render(rec))
    directive = check_emf(doc)

    assert (doc["Tier"], doc["Model"]) == ("none", "none")
    assert (doc["Requests"], doc["Errors"]) == (1, 1)
    names = {m["Name"] for m in directive["Metrics"]}
    # Latencies never measured are not declared, so they cannot skew a p95.
    assert "DecisionLatencyMs" not in names
    assert "UpstreamLatencyMs" not in names
    assert "UpstreamLatencyMs" not in doc


def test_a_cached_decision_counts_one_cache_hit() -> None:
    doc = orjson.loads(EMFWriter().render(make_record(cache_hit=True)))

    assert doc["CacheHits"] == 1


def test_a_custom_namespace_is_used_and_a_reserved_one_is_refused() -> None:
    doc = orjson.loads(EMFWriter("Acme/Router").render(make_record()))
    assert check_emf(doc)["Namespace"] == "Acme/Router"

    with pytest.raises(ConfigError, match=r"'AWS/Router'.*AWS/"):
        EMFWriter("AWS/Router")
    with pytest.raises(ConfigError, match="contains '!'"):
        EMFWriter("Router!")


def test_with_emf_each_request_writes_one_line_carrying_the_access_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = io.StringIO()
    recorder = Recorder(Metrics(), (EMFWriter(stream=stream),))
    caplog.set_level(logging.INFO, logger="llm_router.access")

    recorder.record(make_record(request_id="req-42"))

    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    doc = orjson.loads(lines[0])
    check_emf(doc)
    assert doc["request_id"] == "req-42"
    assert doc["tier"] == "medium"
    assert doc["cost_usd"] == 0.001312
    access = [r for r in caplog.records if r.name == "llm_router.access"]
    assert access == [], "the access line must not be written twice"


def test_with_the_access_log_off_the_record_carries_metrics_only() -> None:
    doc = orjson.loads(EMFWriter().render(make_record(), with_access_fields=False))

    check_emf(doc)
    assert "request_id" not in doc
    assert "task" not in doc


def test_without_emf_the_recorder_keeps_its_own_access_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="llm_router.access")

    Recorder(Metrics()).record(make_record(request_id="req-7"))

    access = [r for r in caplog.records if r.name == "llm_router.access"]
    assert len(access) == 1
    assert orjson.loads(access[0].getMessage())["request_id"] == "req-7"


def test_the_router_writes_emf_to_stdout_for_plain_and_streamed_chat(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with (
        serve_router(emf_enabled=True, emf_namespace="LLMRouterTest") as (url, _),
        openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0) as sdk,
    ):
        plain = sdk.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": SECRET_PROMPT}]
        )
        chunks = list(
            sdk.chat.completions.create(
                model="large",
                messages=[{"role": "user", "content": SECRET_PROMPT}],
                stream=True,
            )
        )
        with pytest.raises(openai.NotFoundError):
            sdk.chat.completions.create(
                model="gpt-17", messages=[{"role": "user", "content": "hi"}]
            )

    out = capsys.readouterr().out
    docs = emf_lines(out)
    assert len(docs) == 3, out
    for doc in docs:
        assert check_emf(doc)["Namespace"] == "LLMRouterTest"
    first, streamed, failed = docs
    assert plain.usage is not None
    assert first["Model"] == plain.model
    assert first["InputTokens"] == plain.usage.prompt_tokens
    assert first["OutputTokens"] == plain.usage.completion_tokens
    assert first["CostUSD"] > 0
    assert (streamed["Tier"], streamed["Errors"]) == ("large", 0)
    assert streamed["OutputTokens"] > 0, "stream usage must reach the record"
    assert streamed["Model"] == chunks[0].model
    assert (failed["Tier"], failed["Errors"]) == ("none", 1)
    assert "bluebird" not in out, "stdout must never carry the prompt"
