"""Schemathesis against the router's own OpenAPI schema: no 5xx, no violations.

Every check schemathesis runs by default applies: no server error, documented
status codes, content types and headers, response bodies matching their
schemas, schema-valid requests accepted and schema-invalid ones rejected.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from helpers import make_settings
from llm_router.app import create_app

app = create_app(make_settings(cache_backend="none"))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
CASES: dict[str, int] = {}
MIN_CASES = 500


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_endpoint_conforms_to_its_schema(case: schemathesis.Case) -> None:
    key = f"{case.method} {case.path}"
    CASES[key] = CASES.get(key, 0) + 1
    case.call_and_validate()


@pytest.mark.slow
def test_the_fuzzing_above_ran_at_least_500_cases() -> None:
    total = sum(CASES.values())
    print(f"schemathesis cases per operation: {CASES}; total {total}")
    assert total >= MIN_CASES, (
        f"only {total} generated cases ({CASES}); run the whole module so the "
        "fuzzing test runs first"
    )
