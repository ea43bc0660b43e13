"""The deploy guide's client snippet, run against a real router on loopback.

Lambda's SigV4 check cannot run here; what can is everything on our side: the
snippet signs with service `lambda`, and the router accepts its API key from
`x-api-key` while `Authorization` carries the SigV4 signature.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import serve_router

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
KEY = "sk-guide-0001"


def client_snippet() -> str:
    """The Python block of the guide's 'Calling the small stack' section."""
    section = GUIDE.read_text(encoding="utf-8").split("### Calling the small stack")[1]
    found = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert found, "the guide lost its client example"
    return found.group(1)


def test_the_guides_client_signs_for_lambda_and_reaches_the_router(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDGUIDETEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "guide-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")

    with serve_router(api_keys=KEY) as (url, _service):
        namespace: dict[str, Any] = {"URL": url + "/", "API_KEY": KEY}
        exec(compile(client_snippet(), str(GUIDE), "exec"), namespace)  # noqa: S102
        client = namespace["client"]
        try:
            raw = client.with_options(
                max_retries=0
            ).chat.completions.with_raw_response.create(
                model="auto",
                messages=[{"role": "user", "content": "Summarize this sentence."}],
            )
        finally:
            client.close()

    assert raw.http_response.status_code == 200
    assert raw.http_response.request.headers["x-api-key"] == KEY
    signature = raw.http_response.request.headers["authorization"]
    assert signature.startswith("AWS4-HMAC-SHA256 Credential=AKIDGUIDETEST/")
    assert "/us-east-1/lambda/aws4_request" in signature
    assert "content-type" in signature.split("SignedHeaders=")[1]


def test_the_signature_covers_the_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDGUIDETEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "guide-secret")
    namespace: dict[str, Any] = {"URL": "https://x.lambda-url.us-east-1.on.aws/"}
    namespace["API_KEY"] = KEY
    exec(compile(client_snippet(), str(GUIDE), "exec"), namespace)  # noqa: S102
    namespace["client"].close()
    auth = namespace["SigV4"]("us-east-1")

    def sign(body: bytes) -> str:
        request = httpx.Request(
            "POST", namespace["URL"], content=body, headers={"content-type": "a/b"}
        )
        signed = next(auth.auth_flow(request))
        return str(signed.headers["authorization"])

    assert sign(b"one") != sign(b"two")
