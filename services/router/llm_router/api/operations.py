"""Everything but chat: decisions, models, feedback, health and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import JSONResponse, Response

from llm_router.api.schemas import FeedbackRequest, RouteRequest, dump_messages
from llm_router.classifiers.base import TASKS, Classifier
from llm_router.errors import InvalidRequest, NotFound
from llm_router.routing.router import AUTO
from llm_router.service import RouterService

router = APIRouter()


def _service(request: Request) -> RouterService:
    service: RouterService = request.app.state.service
    return service


@router.post("/v1/route", tags=["routing"])
async def route(body: RouteRequest, request: Request) -> JSONResponse:
    """The decision for a request, without calling any upstream."""
    service = _service(request)
    decision = await service.router.decide(dump_messages(body.messages), body.model)
    # A client that routes here and calls the model itself can still send
    # feedback on the decision.
    service.recent.remember(request.state.request_id, decision.tier, decision.task)
    return JSONResponse(
        decision.to_json(), headers={"x-request-id": request.state.request_id}
    )


@router.get("/v1/models", tags=["routing"])
async def list_models(request: Request) -> JSONResponse:
    """`auto`, the tiers and the concrete models, in OpenAI list shape."""
    policy = _service(request).policy
    entries = [{"id": AUTO, "object": "model", "owned_by": "llm-router"}]
    for name in policy.tiers:
        entries.append(
            {"id": name, "object": "model", "owned_by": "llm-router", "tier": name}
        )
    for name, tier in policy.tiers.items():
        entries.append(
            {
                "id": tier.model,
                "object": "model",
                "owned_by": tier.provider,
                "tier": name,
            }
        )
    return JSONResponse({"object": "list", "data": entries})


@router.post("/v1/feedback", tags=["routing"])
async def feedback(body: FeedbackRequest, request: Request) -> JSONResponse:
    """Record whether a recent request's tier was right."""
    service = _service(request)
    if body.task is not None and body.task not in TASKS:
        msg = f"Unknown task {body.task!r}. Known tasks: {', '.join(TASKS)}."
        raise InvalidRequest(msg, param="task", code="invalid_value")
    known = await service.recent.find(body.request_id)
    if known is None:
        msg = (
            f"Unknown or expired request id {body.request_id!r}. Feedback is "
            f"accepted for {service.settings.feedback_window_s} s after a request."
        )
        raise NotFound(msg, param="request_id", code="request_not_found")
    service.metrics.feedback.labels(known.tier, body.verdict).inc()
    if body.task is not None:
        service.metrics.feedback_tasks.labels(known.task, body.task).inc()
    return JSONResponse({"request_id": body.request_id, "recorded": True})


@router.get("/healthz", tags=["operations"])
async def healthz() -> JSONResponse:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz", tags=["operations"])
async def readyz(request: Request) -> JSONResponse:
    """Readiness: the policy and classifier are loaded."""
    service = _service(request)
    classifier = service.router.classifier
    classifier_ready = await classifier.ready()
    report: dict[str, object] = {
        "status": "ready",
        "policy": service.policy.name,
        "policy_version": service.router.policy_version,
        "classifier": classifier.name,
        "classifier_ready": classifier_ready,
        "tiers": service.policy.tier_names,
    }
    fallback = getattr(classifier, "fallback", None)
    if isinstance(fallback, Classifier):
        # A remote classifier (Triton) that cannot be reached still answers
        # through its in-process fallback: reported, never a reason to be unready.
        report["classifier_reachable"] = classifier_ready
        report["classifier_fallback"] = fallback.name
        report["classifier_ready"] = classifier_ready or await fallback.ready()
    cache = service.router.cache
    if cache is not None:
        report["cache"] = cache.backend
        report["cache_ready"] = await cache.ready()
    return JSONResponse(report)


@router.get("/metrics", tags=["operations"])
async def metrics(request: Request) -> Response:
    """Prometheus metrics."""
    registry = _service(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
