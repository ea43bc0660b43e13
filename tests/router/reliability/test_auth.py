"""Inbound API keys: who gets in, and what everyone else sees."""

from __future__ import annotations

import logging

import boto3
import httpx
import openai
import pytest

from helpers import make_settings, serve, serve_router
from llm_router.app import create_app
from llm_router.errors import ConfigError
from llm_router.reliability.auth import ApiKeys, parse_keys
from llm_router.service import RouterService

KEYS = "sk-alpha-0001,sk-beta-0002"
HELLO = [{"role": "user", "content": "Summarize this sentence."}]


def test_the_sdk_gets_in_with_a_configured_key() -> None:
    with serve_router(api_keys=KEYS) as (url, _service):
        client = openai.OpenAI(
            base_url=url + "/v1", api_key="sk-beta-0002", max_retries=0
        )
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=HELLO
        )
        client.close()

    assert raw.http_response.status_code == 200
    assert raw.headers["x-router-tier"] == "small"


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, "Missing API key"),
        ({"authorization": "Bearer sk-wrong"}, "Incorrect API key"),
        ({"authorization": "Basic c2stYWxwaGEtMDAwMQ=="}, "Missing API key"),
        ({"x-api-key": "sk-alpha-000"}, "Incorrect API key"),
    ],
)
def test_a_missing_or_wrong_key_is_a_401_in_openai_shape(
    headers: dict[str, str], fragment: str
) -> None:
    with serve_router(api_keys=KEYS) as (url, _service):
        response = httpx.post(
            url + "/v1/chat/completions",
            json={"model": "auto", "messages": HELLO},
            headers=headers,
        )
        models = httpx.get(url + "/v1/models", headers=headers)

    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["type"] == "authentication_error"
    assert error["code"] == "invalid_api_key"
    assert fragment in error["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["x-request-id"]
    assert models.status_code == 401


def test_the_sdk_raises_authentication_error_on_a_wrong_key() -> None:
    with serve_router(api_keys=KEYS) as (url, _service):
        client = openai.OpenAI(base_url=url + "/v1", api_key="sk-nope", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as raised:
            client.chat.completions.create(model="auto", messages=HELLO)
        client.close()

    assert raised.value.status_code == 401


def test_x_api_key_header_is_accepted() -> None:
    with serve_router(api_keys=KEYS) as (url, _service):
        response = httpx.get(url + "/v1/models", headers={"x-api-key": "sk-alpha-0001"})

    assert response.status_code == 200, response.text


def test_probes_metrics_and_docs_stay_open_without_a_key() -> None:
    with serve_router(api_keys=KEYS) as (url, _service):
        statuses = {
            path: httpx.get(url + path).status_code
            for path in ("/healthz", "/readyz", "/metrics", "/openapi.json")
        }

    assert statuses == dict.fromkeys(statuses, 200), statuses


def test_auth_is_off_when_no_key_is_configured() -> None:
    with serve_router() as (url, service):
        response = httpx.post(
            url + "/v1/chat/completions", json={"model": "auto", "messages": HELLO}
        )

    assert len(service.api_keys) == 0
    assert response.status_code == 200, response.text


def test_keys_are_kept_as_digests_and_identified_by_a_digest_prefix() -> None:
    keys = ApiKeys(["sk-alpha-0001", "sk-beta-0002"])

    key_id = keys.identify("sk-alpha-0001")
    assert key_id is not None
    assert key_id.startswith("key-")
    assert "alpha" not in key_id
    assert keys.identify("sk-alpha-0002") is None
    assert keys.identify("") is None
    stored = b"".join(keys._digests)
    assert b"sk-alpha" not in stored
    assert len(keys) == 2


def test_the_access_line_names_the_key_id_never_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="llm_router.access")
    with serve_router(api_keys=KEYS) as (url, _service):
        httpx.post(
            url + "/v1/chat/completions",
            json={"model": "auto", "messages": HELLO},
            headers={"authorization": "Bearer sk-alpha-0001"},
        )

    lines = [r.getMessage() for r in caplog.records if r.name == "llm_router.access"]
    assert lines, "one access line per request"
    expected = ApiKeys(["sk-alpha-0001"]).identify("sk-alpha-0001")
    assert f'"api_key_id":"{expected}"' in lines[-1]
    assert "sk-alpha-0001" not in caplog.text


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("a, b,,c\nd", ["a", "b", "c", "d"]),
        ('["a", " b "]', ["a", "b"]),
        ('{"api_keys": ["a"]}', ["a"]),
    ],
)
def test_key_lists_parse_from_text_or_json(text: str, keys: list[str]) -> None:
    assert parse_keys(text) == keys


def test_a_malformed_json_key_list_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="JSON list"):
        parse_keys('{"api_keys": "a"}')


def test_keys_are_read_once_from_secrets_manager(aws_env: str) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(
        Name="router-keys-ok", SecretString='{"api_keys": ["sk-from-secret-1"]}'
    )["ARN"]
    client.close()
    settings = make_settings(api_keys_secret_arn=arn, aws_region="us-east-1")
    service = RouterService.from_settings(settings)

    with serve(create_app(settings, service)) as url:
        good = httpx.get(
            url + "/v1/models", headers={"authorization": "Bearer sk-from-secret-1"}
        )
        bad = httpx.get(url + "/v1/models", headers={"authorization": "Bearer x"})

    assert good.status_code == 200, good.text
    assert bad.status_code == 401


def test_an_unreadable_secret_fails_start_up_naming_the_secret(aws_env: str) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:absent-AbCdEf"
    settings = make_settings(api_keys_secret_arn=arn, aws_region="us-east-1")

    with pytest.raises(ConfigError, match="absent-AbCdEf") as raised:
        RouterService.from_settings(settings)
    assert "GetSecretValue" in str(raised.value)


def test_empty_secret_is_refused(aws_env: str) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="router-keys-empty", SecretString=" ")["ARN"]
    client.close()
    settings = make_settings(api_keys_secret_arn=arn, aws_region="us-east-1")

    with pytest.raises(ConfigError, match="holds no API keys"):
        RouterService.from_settings(settings)
