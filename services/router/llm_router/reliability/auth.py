"""Inbound API keys.

Keys come from `LLM_ROUTER_API_KEYS` (comma-separated) and, on AWS, from the
Secrets Manager secret named by `LLM_ROUTER_API_KEYS_SECRET_ARN`, read once at
start. Only their SHA-256 digests are kept; a presented key is hashed and
compared with every stored digest in constant time. With no key configured,
auth is off: the embedded default runs keyless on a laptop.

Paths under `/v1/` need a key (`Authorization: Bearer <key>` or `x-api-key`);
`/healthz`, `/readyz`, `/metrics` and the API docs stay open for probes and
scrapers.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from llm_router.errors import AuthenticationFailed, ConfigError
from llm_router.telemetry.records import Recorder, RequestRecord

if TYPE_CHECKING:
    from llm_router.settings import Settings

logger = logging.getLogger(__name__)

ANONYMOUS = "anonymous"
_PROTECTED_PREFIX = "/v1/"


class ApiKeys:
    """SHA-256 digests of the accepted keys."""

    def __init__(self, keys: Iterable[str]) -> None:
        digests = {hashlib.sha256(k.encode()).digest() for k in keys if k}
        self._digests = tuple(sorted(digests))

    def __len__(self) -> int:
        return len(self._digests)

    def identify(self, presented: str) -> str | None:
        """The key's id (a digest prefix, safe to log) if it is accepted."""
        digest = hashlib.sha256(presented.encode()).digest()
        match = None
        # No early exit: every stored digest is compared, in constant time.
        for stored in self._digests:
            if hmac.compare_digest(stored, digest):
                match = stored
        return None if match is None else "key-" + match[:6].hex()


def parse_keys(text: str) -> list[str]:
    """Keys from comma- or newline-separated text, or a JSON list of them."""
    text = text.strip()
    if text[:1] in ("[", "{"):
        try:
            value: Any = orjson.loads(text)
        except orjson.JSONDecodeError:
            msg = (
                "The API-key secret looks like JSON but does not parse. Store a "
                'JSON list of keys, {"api_keys": [...]}, or comma-separated keys.'
            )
            raise ConfigError(msg) from None
        if isinstance(value, dict):
            value = value.get("api_keys")
        if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
            msg = (
                "The API-key secret must hold a JSON list of strings or "
                '{"api_keys": [...]}.'
            )
            raise ConfigError(msg)
        return [k.strip() for k in value if k.strip()]
    return [k.strip() for k in text.replace("\n", ",").split(",") if k.strip()]


def read_secret_keys(secret_arn: str, region: str | None = None) -> list[str]:
    """Read the API keys from Secrets Manager (once, at start)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client("secretsmanager", region_name=region)
    try:
        secret = client.get_secret_value(SecretId=secret_arn)
    except (BotoCoreError, ClientError) as exc:
        msg = (
            f"Cannot read API keys from secret {secret_arn!r}: "
            f"{type(exc).__name__}. Check LLM_ROUTER_API_KEYS_SECRET_ARN and the "
            "task role's secretsmanager:GetSecretValue permission."
        )
        raise ConfigError(msg) from None
    finally:
        client.close()
    keys = parse_keys(secret.get("SecretString") or "")
    if not keys:
        msg = f"Secret {secret_arn!r} holds no API keys."
        raise ConfigError(msg)
    return keys


class AuthMiddleware:
    """Refuses `/v1/` requests without an accepted key (pure ASGI, no buffering)."""

    def __init__(self, app: ASGIApp, keys: ApiKeys, recorder: Recorder) -> None:
        self.app = app
        self.keys = keys
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(_PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        presented = _presented_key(scope["headers"])
        key_id = self.keys.identify(presented) if presented else None
        if key_id is None:
            state = scope.get("state") or {}
            self.recorder.record(
                RequestRecord(
                    request_id=state.get("request_id", ""),
                    status=401,
                    endpoint=scope["path"],
                    error="invalid_api_key",
                )
            )
            await _refuse(send, missing=not presented)
            return
        scope.setdefault("state", {})["api_key_id"] = key_id
        await self.app(scope, receive, send)


def _presented_key(headers: Iterable[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
        elif name == b"x-api-key":
            return value.decode("latin-1").strip()
    return ""


async def _refuse(send: Send, *, missing: bool) -> None:
    if missing:
        msg = (
            "Missing API key. Send it as 'Authorization: Bearer <key>' "
            "(the OpenAI SDK's api_key) or in the 'x-api-key' header."
        )
    else:
        msg = "Incorrect API key. Check the key this router was configured with."
    error = AuthenticationFailed(msg, code="invalid_api_key")
    body = orjson.dumps(error.to_body())
    await send(
        {
            "type": "http.response.start",
            "status": error.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="llm-router"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def load_api_keys(settings: Settings, *, read_secret: bool = True) -> ApiKeys:
    """The keys from `LLM_ROUTER_API_KEYS` and, if named, the Secrets Manager secret."""
    keys = parse_keys(settings.api_keys.get_secret_value()) if settings.api_keys else []
    if read_secret and settings.api_keys_secret_arn:
        keys += read_secret_keys(settings.api_keys_secret_arn, settings.aws_region)
    api_keys = ApiKeys(keys)
    if api_keys:
        logger.info("inbound auth on with %d API keys", len(api_keys))
    else:
        logger.info("inbound auth off: no API key configured")
    return api_keys
