"""Amazon Bedrock through Converse and ConverseStream (aiobotocore).

One aiobotocore client per (region, connect timeout, first-byte timeout),
created on first use inside the running loop and reused; each pools up to
`max_connections` connections. aiobotocore is imported on first use, so a
router without Bedrock tiers never pays for it at start-up.

botocore's own retries are off: a throttled or failed call surfaces at once
as the router's error, and the router's fallback decides where to go next.
Every botocore and asyncio failure is translated in `_translate_errors`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any

from llm_router.errors import (
    UpstreamError,
    UpstreamRejected,
    UpstreamThrottled,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from llm_router.policy.schema import BedrockProvider as BedrockConfig
from llm_router.providers._bedrock_translate import (
    StreamTranslator,
    build_converse_request,
    to_openai_completion,
    usage_from_bedrock,
)
from llm_router.providers.base import (
    JSON,
    Completion,
    Provider,
    UpstreamCall,
    error_for_status,
)

logger = logging.getLogger(__name__)

_ClientKey = tuple[str, float, float]
_THROTTLED = {"throttling", "servicequotaexceeded", "toomanyrequests"}
_UNAVAILABLE = {
    "serviceunavailable",
    "internalserver",
    "internalfailure",
    "modelnotready",
    "modelerror",
    "modelstreamerror",
}
_BAD_CREDENTIALS = {
    "unrecognizedclient",
    "invalidsignature",
    "expiredtoken",
    "incompletesignature",
    "missingauthenticationtoken",
}


class BedrockProvider(Provider):
    """Calls Bedrock's Converse API; the tier's `target` is what it invokes."""

    kind = "bedrock"

    def __init__(self, name: str, config: BedrockConfig) -> None:
        super().__init__(name)
        self.region = config.region
        self.endpoint_url = config.endpoint_url
        self.max_connections = config.max_connections
        self._clients: dict[_ClientKey, Any] = {}
        self._exit_stack = AsyncExitStack()
        self._lock: asyncio.Lock | None = None
        self._session: Any = None

    async def complete(self, call: UpstreamCall) -> Completion:
        region = self._region_for(call)
        with self._translate_errors(call, region, "InvokeModel"):
            request = build_converse_request(call.body, call.target)
            client = await self._client_for(call, region)
            async with asyncio.timeout(call.timeouts.total):
                response = await client.converse(**request)
        body = to_openai_completion(
            response, completion_id=_completion_id(call), model=call.target
        )
        return Completion(body=body, usage=usage_from_bedrock(response.get("usage")))

    async def stream(self, call: UpstreamCall) -> AsyncIterator[JSON]:
        region = self._region_for(call)
        deadline = asyncio.get_running_loop().time() + call.timeouts.total
        translator = StreamTranslator(
            completion_id=_completion_id(call), model=call.target
        )
        permission = "InvokeModelWithResponseStream"
        with self._translate_errors(call, region, permission):
            request = build_converse_request(call.body, call.target)
            client = await self._client_for(call, region)
            async with asyncio.timeout_at(deadline):
                response = await client.converse_stream(**request)
        events = response["stream"]
        try:
            iterator = aiter(events)
            while True:
                # The deadline wraps each read, never a `yield`: a timeout
                # must not fire while the consumer holds the generator.
                with self._translate_errors(call, region, permission):
                    async with asyncio.timeout_at(deadline):
                        event = await anext(iterator, None)
                if event is None:
                    break
                chunk = translator.translate(event)
                if chunk is not None:
                    yield chunk
        finally:
            events.close()
        if translator.usage is None:
            logger.warning(
                "Bedrock stream for tier %s (target %s) ended without a metadata "
                "event; its tokens are counted as zero",
                call.tier,
                call.target,
            )
        yield translator.finish()

    async def aclose(self) -> None:
        await self._exit_stack.aclose()
        self._clients.clear()

    def _region_for(self, call: UpstreamCall) -> str:
        region = call.config.region or self.region
        if region is None:  # the policy validator already refuses this
            msg = f"Tier {call.tier!r} on Bedrock provider {self.name!r} has no region."
            raise UpstreamUnavailable(msg, code="upstream_misconfigured")
        return region

    async def _client_for(self, call: UpstreamCall, region: str) -> Any:
        limits = call.timeouts
        key = (region, limits.connect, limits.first_byte)
        client = self._clients.get(key)
        if client is not None:
            return client
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = await self._create_client(key)
                self._clients[key] = client
        return client

    async def _create_client(self, key: _ClientKey) -> Any:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        region, connect, first_byte = key
        if self._session is None:
            self._session = get_session()
        config = AioConfig(
            connect_timeout=connect,
            read_timeout=first_byte,
            max_pool_connections=self.max_connections,
            retries={"total_max_attempts": 1, "mode": "standard"},
            # Loads the service model in a worker thread, off the event loop.
            warm_up_loader_caches=True,
        )
        logger.info(
            "creating Bedrock client for provider %s in %s (pool %d)",
            self.name,
            region,
            self.max_connections,
        )
        return await self._exit_stack.enter_async_context(
            self._session.create_client(
                "bedrock-runtime",
                region_name=region,
                endpoint_url=self.endpoint_url,
                config=config,
            )
        )

    @contextmanager
    def _translate_errors(
        self, call: UpstreamCall, region: str, permission: str
    ) -> Iterator[None]:
        """Turn botocore and asyncio failures into the router's upstream errors."""
        # Imported here, not at module level: aiohttp and botocore cost ~0.3 s
        # of cold start each and are loaded with aiobotocore on the first call.
        import aiohttp
        from botocore import exceptions as aws

        where = f"Bedrock {self.name!r} (target {call.target!r} in {region})"
        try:
            yield
        except UpstreamError:
            raise
        except aws.ClientError as exc:
            raise self._map_client_error(exc, call, region, permission) from None
        except aiohttp.ServerTimeoutError:
            msg = (
                f"{where} sent nothing for {call.timeouts.first_byte:g} s "
                "(the tier's first_byte timeout)."
            )
            raise UpstreamTimeout(msg, code="upstream_timeout") from None
        except TimeoutError:
            msg = (
                f"{where} did not finish within the tier's total timeout of "
                f"{call.timeouts.total:g} s."
            )
            raise UpstreamTimeout(msg, code="upstream_timeout") from None
        except aws.ConnectTimeoutError:
            msg = (
                f"{where} did not accept a connection within "
                f"{call.timeouts.connect:g} s."
            )
            raise UpstreamTimeout(msg, code="upstream_timeout") from None
        except aws.ReadTimeoutError:
            msg = (
                f"{where} sent nothing for {call.timeouts.first_byte:g} s "
                "(the tier's first_byte timeout)."
            )
            raise UpstreamTimeout(msg, code="upstream_timeout") from None
        except aws.EndpointConnectionError as exc:
            msg = f"{where} is unreachable at {exc.kwargs.get('endpoint_url')}."
            raise UpstreamUnavailable(msg, code="upstream_unreachable") from None
        except aws.NoCredentialsError:
            msg = (
                f"{where} cannot be called: no AWS credentials were found. Give "
                "the router an IAM role or set AWS credentials in its environment."
            )
            raise UpstreamUnavailable(msg, code="upstream_auth") from None
        except aws.ParamValidationError as exc:
            msg = f"{where} cannot take this request: {exc}"
            raise UpstreamRejected(msg, code="upstream_rejected") from None
        except (aws.BotoCoreError, aiohttp.ClientError, OSError) as exc:
            msg = f"{where} broke off the response: {type(exc).__name__}."
            raise UpstreamUnavailable(msg, code="upstream_broken") from None

    def _map_client_error(
        self, exc: Any, call: UpstreamCall, region: str, permission: str
    ) -> UpstreamError:
        error = exc.response.get("Error") or {}
        code = str(error.get("Code") or "Unknown")
        message = str(error.get("Message") or "no message").strip()
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders") or {}
        # Event-stream exceptions name the union member ("throttlingException").
        kind = code.lower().removesuffix("exception")
        where = f"Bedrock {self.name!r} (target {call.target!r} in {region})"

        if kind in _THROTTLED:
            return UpstreamThrottled(
                f"{where} is throttling requests ({code}): {message}",
                upstream_status=429,
                retry_after=_retry_after(headers),
                code="upstream_throttled",
            )
        if kind == "validation":
            return UpstreamRejected(
                f"{where} rejected the request ({code}): {message}"
                + _validation_hint(message),
                upstream_status=400,
                code="upstream_rejected",
            )
        if kind == "accessdenied":
            return UpstreamUnavailable(
                f"{where} denied access ({code}): {message} Allow "
                f"bedrock:{permission} on {_invoke_resource(call.target, region)} "
                "for the router's IAM role, and enable access to the model in "
                "the Bedrock console (Model access) for this account and region.",
                upstream_status=403,
                code="upstream_access_denied",
            )
        if kind == "resourcenotfound":
            return UpstreamUnavailable(
                f"{where} was not found ({code}): {message} Check that the model "
                f"or inference profile {call.target!r} exists in {region}, or set "
                "the tier's `target`/`region` to one that does.",
                upstream_status=404,
                code="upstream_model_not_found",
            )
        if kind == "modeltimeout":
            return UpstreamTimeout(
                f"{where} timed out while the model was generating ({code}): {message}",
                upstream_status=408,
                code="upstream_timeout",
            )
        if kind in _UNAVAILABLE:
            return UpstreamUnavailable(
                f"{where} failed ({code}): {message}",
                upstream_status=status if isinstance(status, int) else None,
                code="upstream_error",
            )
        if kind in _BAD_CREDENTIALS:
            return UpstreamUnavailable(
                f"{where} refused the router's AWS credentials ({code}): {message} "
                "Check the router's IAM role or AWS credentials.",
                upstream_status=403,
                code="upstream_auth",
            )
        return error_for_status(
            status if isinstance(status, int) else 502,
            f"{code}: {message}",
            provider=self.name,
            model=call.target,
        )


def _invoke_resource(target: str, region: str) -> str:
    """The ARN an IAM policy must allow for invoking `target`."""
    if target.startswith("arn:"):
        return target
    geo_prefixes = ("us.", "eu.", "apac.", "jp.", "au.", "ca.", "us-gov.", "global.")
    if target.startswith(geo_prefixes):
        return (
            f"arn:aws:bedrock:{region}:<account-id>:inference-profile/{target} "
            "(and on the foundation model in each destination region)"
        )
    return f"arn:aws:bedrock:{region}::foundation-model/{target}"


def _validation_hint(message: str) -> str:
    lowered = message.lower()
    if "on-demand throughput" in lowered and "inference profile" in lowered:
        return (
            " Set the tier's target to an inference profile id (e.g. 'us.' or "
            "'global.' + the model id) or an inference-profile ARN."
        )
    return ""


def _retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _completion_id(call: UpstreamCall) -> str:
    return f"chatcmpl-bedrock-{call.request_id or uuid.uuid4().hex}"
