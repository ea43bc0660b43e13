"""The `triton` classifier: the in-process classifier, served by Triton.

Triton serves `task_classifier` from `services/router/triton/model_repository`,
whose Python backend builds the same in-process classifier this module falls
back to. The router keeps one async client (gRPC, or HTTP as an option) and
bounds every call by `triton_timeout_ms`.

When Triton is down, slow or answers with an error, the turn is classified in
process and the fallback is counted in `llm_router_classifier_fallbacks_total`
with a reason:

    unavailable   Triton refused or dropped the connection
    timeout       no answer within `triton_timeout_ms`
    error         Triton answered with an error or malformed outputs
    backoff       Triton was skipped: it failed recently

After a failure Triton is skipped for `triton_backoff_s`, doubling with each
consecutive failure up to `triton_backoff_max_s`, so an outage does not cost
a timeout per request. A successful readiness probe ends the pause early.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Literal

import aiohttp
import numpy as np
import tritonclient.grpc.aio as grpc_client
import tritonclient.http.aio as http_client
from tritonclient.utils import InferenceServerException

from llm_router.classifiers.base import TASKS, Classification, Classifier, Turn
from llm_router.settings import Settings
from llm_router.telemetry.metrics import Metrics

logger = logging.getLogger(__name__)

TEXT_INPUT = "TEXT"
CONTEXT_INPUT = "CONTEXT"
PROBABILITIES_OUTPUT = "TASK_PROBABILITIES"
COMPLEXITY_OUTPUT = "COMPLEXITY"
_PROBE_TIMEOUT_FLOOR_S = 0.25  # readiness probes may wait longer than a decision

FallbackReason = Literal["unavailable", "timeout", "error", "backoff"]


class TritonCallError(Exception):
    """A Triton call failed; `reason` is the fallback metric's label."""

    def __init__(self, reason: FallbackReason, detail: str) -> None:
        super().__init__(detail)
        self.reason: FallbackReason = reason


class TritonClassifier(Classifier):
    """Classifies through Triton, falling back to the in-process classifier."""

    name = "triton"

    def __init__(
        self,
        settings: Settings,
        fallback: Classifier,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.url = settings.triton_url
        self.protocol = settings.triton_protocol
        self.model = settings.triton_model
        self.timeout_s = settings.triton_timeout_ms / 1000
        self.backoff_s = settings.triton_backoff_s
        self.backoff_max_s = settings.triton_backoff_max_s
        self.fallback = fallback
        self.metrics = metrics or Metrics()
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._failures = 0
        self._skip_until = 0.0

    @classmethod
    def from_settings(
        cls, settings: Settings, *, metrics: Metrics | None = None
    ) -> TritonClassifier:
        """A client for the settings' Triton, with the default in-process fallback."""
        from llm_router.classifiers.factory import build_classifier

        in_process = Settings.model_fields["classifier"].default
        fallback = build_classifier(
            settings.model_copy(update={"classifier": in_process})
        )
        return cls(settings, fallback, metrics=metrics)

    def classify(self, turn: Turn) -> Classification:
        """Classify synchronously in process (the model Triton serves)."""
        return self.fallback.classify(turn)

    async def aclassify(self, turn: Turn) -> Classification:
        """Classify through Triton; in process if Triton fails or was failing."""
        if time.monotonic() < self._skip_until:
            self._count_fallback("backoff")
            return await self.fallback.aclassify(turn)

        try:
            result = await self._infer(turn)
        except TritonCallError as exc:
            self._record_failure(exc)
            self._count_fallback(exc.reason)
            return await self.fallback.aclassify(turn)
        self._record_success()
        return result

    async def ready(self) -> bool:
        """Whether Triton answers and reports the model ready."""
        timeout_s = max(self.timeout_s, _PROBE_TIMEOUT_FLOOR_S)
        try:
            async with asyncio.timeout(timeout_s):
                ready = bool(await self._connection().is_model_ready(self.model))
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False
        if ready:
            self._record_success()
        return ready

    async def aclose(self) -> None:
        """Close the Triton connection and the fallback."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        await self.fallback.aclose()

    async def _infer(self, turn: Turn) -> Classification:
        client = self._connection()
        module = grpc_client if self.protocol == "grpc" else http_client
        inputs = [
            _bytes_input(module, TEXT_INPUT, turn.text),
            _bytes_input(module, CONTEXT_INPUT, turn.context),
        ]
        outputs = [
            module.InferRequestedOutput(PROBABILITIES_OUTPUT),
            module.InferRequestedOutput(COMPLEXITY_OUTPUT),
        ]
        extra: dict[str, Any] = {}
        if self.protocol == "grpc":
            extra["client_timeout"] = self.timeout_s
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await client.infer(
                    self.model, inputs, outputs=outputs, **extra
                )
        except TimeoutError:
            msg = f"no answer within {self.timeout_s * 1000:.0f} ms"
            raise TritonCallError("timeout", msg) from None
        except InferenceServerException as exc:
            raise _translate(exc) from None
        except (OSError, aiohttp.ClientConnectionError) as exc:
            raise TritonCallError("unavailable", type(exc).__name__) from None
        except Exception as exc:  # noqa: BLE001 - a broken client must not fail routing
            raise TritonCallError("error", type(exc).__name__) from None
        return _read_classification(response)

    def _connection(self) -> Any:
        """The one client, created in (and bound to) the running event loop."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            if self.protocol == "grpc":
                self._client = grpc_client.InferenceServerClient(self.url)
            else:
                self._client = http_client.InferenceServerClient(self.url)
            self._client_loop = loop
        return self._client

    def _record_failure(self, exc: TritonCallError) -> None:
        self._failures += 1
        pause = min(self.backoff_max_s, self.backoff_s * 2 ** (self._failures - 1))
        self._skip_until = time.monotonic() + pause
        if self._failures == 1:
            logger.warning(
                "Triton classifier at %s failed (%s: %s); classifying in "
                "process, retrying Triton in %.1f s",
                self.url,
                exc.reason,
                exc,
                pause,
            )

    def _record_success(self) -> None:
        if self._failures:
            logger.info(
                "Triton classifier at %s answers again after %d failures",
                self.url,
                self._failures,
            )
        self._failures = 0
        self._skip_until = 0.0

    def _count_fallback(self, reason: FallbackReason) -> None:
        self.metrics.classifier_fallbacks.labels(self.name, reason).inc()


def _bytes_input(module: Any, name: str, value: str) -> Any:
    tensor = module.InferInput(name, [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[value.encode("utf-8")]], dtype=np.object_))
    return tensor


def _translate(exc: InferenceServerException) -> TritonCallError:
    status = str(exc.status() or "")
    if "DEADLINE_EXCEEDED" in status:
        return TritonCallError("timeout", status)
    if "UNAVAILABLE" in status:
        return TritonCallError("unavailable", status)
    return TritonCallError("error", f"{status} {exc.message()}".strip())


def _read_classification(response: Any) -> Classification:
    probabilities = response.as_numpy(PROBABILITIES_OUTPUT)
    complexity = response.as_numpy(COMPLEXITY_OUTPUT)
    if (
        probabilities is None
        or complexity is None
        or probabilities.size != len(TASKS)
        or complexity.size != 1
    ):
        msg = (
            f"Triton returned outputs of unexpected shape; expected {len(TASKS)} "
            "task probabilities and 1 complexity."
        )
        raise TritonCallError("error", msg)
    return Classification(
        probabilities=tuple(float(p) for p in probabilities.reshape(-1)),
        complexity=float(complexity.reshape(-1)[0]),
    )
