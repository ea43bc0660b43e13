"""Start-up imports no SDK the configuration does not use (Lambda pays for each)."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

HEAVY = ("redis", "aiobotocore", "botocore", "boto3", "tritonclient", "numpy")

_CHILD = """
import sys, orjson
from llm_router.app import create_app
from llm_router.service import RouterService
from llm_router.settings import Settings
settings = Settings()
create_app(settings, RouterService.from_settings(settings))
print(orjson.dumps(sorted(m for m in sys.modules if "." not in m)).decode())
"""


def read_top_level_modules(**env: str) -> set[str]:
    """Top-level modules loaded by a fresh process that builds the app."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LLM_ROUTER_")}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(orjson.loads(done.stdout.splitlines()[-1]))


def test_the_default_start_imports_no_cloud_or_triton_sdk() -> None:
    loaded = read_top_level_modules(LLM_ROUTER_CLASSIFIER="rules")

    assert "fastapi" in loaded, "the probe did not build the app"
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.parametrize(
    ("backend", "expected"), [("redis", "redis"), ("dynamodb", None)]
)
def test_a_remote_cache_imports_only_its_own_client(
    backend: str, expected: str | None
) -> None:
    loaded = read_top_level_modules(
        LLM_ROUTER_CLASSIFIER="rules",
        LLM_ROUTER_CACHE_BACKEND=backend,
        AWS_REGION="eu-west-1",
    )

    others = set(HEAVY) - {expected}
    assert not loaded & others, sorted(loaded & others)
    if expected:
        assert expected in loaded
