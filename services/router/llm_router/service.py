"""The running router: policy, classifier, providers, cache and telemetry.

One `RouterService` lives in each process. The HTTP layer reads it from
`app.state.service`; the CLI builds one without a server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

import orjson

from llm_router.cache.base import DecisionCache
from llm_router.cache.guard import CacheUnavailable
from llm_router.classifiers.base import Classifier
from llm_router.classifiers.factory import build_classifier
from llm_router.errors import ConfigError
from llm_router.policy.loader import load_default_policy, load_policy, parse_policy
from llm_router.policy.schema import Policy
from llm_router.providers import Provider, build_provider
from llm_router.reliability.auth import ApiKeys, load_api_keys
from llm_router.reliability.breaker import Breakers
from llm_router.reliability.budgets import (
    Budgets,
    DynamoDBSpend,
    RedisSpend,
    SpendStore,
)
from llm_router.reliability.dispatch import Dispatcher
from llm_router.reliability.limits import RateLimiter
from llm_router.reliability.stores import connect_redis
from llm_router.routing.router import Router
from llm_router.settings import Settings
from llm_router.telemetry.metrics import Metrics
from llm_router.telemetry.records import Recorder, Sink

logger = logging.getLogger(__name__)

# Feedback and tool-call entries share the decision cache's store; decision
# keys are hex digests, so these prefixes cannot collide with them.
FEEDBACK_KEY_PREFIX = "feedback:"
TOOL_CALL_KEY_PREFIX = "tool-call:"


@dataclass(slots=True)
class RecentRequest:
    """What feedback needs to know about a request it refers to."""

    tier: str
    task: str
    expires: float


class RecentRequests:
    """Bounded, expiring memory of routed requests, for `/v1/feedback`.

    The same memory, under another prefix, maps tool-call ids to the tier
    that issued them, so the turn carrying a call's result goes back there.

    With a shared decision cache (Redis or DynamoDB), every request is also
    written there, in the background, under a key of its own: feedback sent
    to another replica or Lambda sandbox than the one that routed the request
    still finds it. A failing store is logged and skipped: feedback then
    relies on this replica's memory.
    """

    def __init__(
        self,
        window_s: int,
        max_entries: int = 100_000,
        *,
        shared: DecisionCache | None = None,
        prefix: str = FEEDBACK_KEY_PREFIX,
    ) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self.shared = shared
        self.prefix = prefix
        self._entries: OrderedDict[str, RecentRequest] = OrderedDict()
        self._writes: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, request_id: str, tier: str, task: str) -> None:
        """Record a routed request."""
        now = time.monotonic()
        entries = self._entries
        entries[request_id] = RecentRequest(tier, task, now + self.window_s)
        # Oldest first: drop what has expired, then what is over the bound.
        while (
            len(entries) > self.max_entries
            or next(iter(entries.values())).expires < now
        ):
            entries.popitem(last=False)
        if self.shared is not None:
            write = asyncio.get_running_loop().create_task(
                self._share(request_id, tier, task)
            )
            self._writes.add(write)
            write.add_done_callback(self._writes.discard)

    async def find(self, request_id: str) -> RecentRequest | None:
        """The request, if it is known and has not expired."""
        entry = self._entries.get(request_id)
        if entry is not None:
            return entry if entry.expires >= time.monotonic() else None
        if self.shared is None:
            return None
        try:
            stored = await self.shared.get(self.prefix + request_id)
        except Exception as exc:  # noqa: BLE001 - feedback must not fail on a store
            self._log_error(exc)
            return None
        if stored is None:
            return None
        try:
            tier, task = orjson.loads(stored)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            logger.warning("%s store holds an unreadable entry", self.shared.backend)
            return None
        # The store expires the entry itself; it was live a moment ago.
        return RecentRequest(str(tier), str(task), time.monotonic())

    async def drain(self) -> None:
        """Wait for the writes to the shared store still in flight."""
        await asyncio.gather(*self._writes)

    async def _share(self, request_id: str, tier: str, task: str) -> None:
        assert self.shared is not None
        try:
            await self.shared.set(
                self.prefix + request_id,
                orjson.dumps([tier, task]),
                self.window_s,
            )
        except Exception as exc:  # noqa: BLE001 - routing must not fail on a store
            self._log_error(exc)

    def _log_error(self, exc: Exception) -> None:
        # Not counted with the decision lookups: those say how the cache
        # serves routing. While the guard pauses the store, say it once.
        assert self.shared is not None
        log = logger.debug if isinstance(exc, CacheUnavailable) else logger.warning
        log(
            "%s store failed for %s entries (%s); this replica's memory only",
            self.shared.backend,
            self.prefix.rstrip(":"),
            type(exc).__name__,
        )


class RouterService:
    """Everything a router process holds, built from settings."""

    def __init__(
        self,
        settings: Settings,
        policy: Policy,
        classifier: Classifier,
        *,
        metrics: Metrics | None = None,
        cache: DecisionCache | None = None,
        sinks: tuple[Sink, ...] = (),
        api_keys: ApiKeys | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.recorder = Recorder(self.metrics, sinks)
        self.generation = Generation(
            Router(
                policy,
                classifier,
                self.metrics,
                cache=cache,
                cache_ttl_s=settings.cache_ttl_s,
            ),
            _build_providers(policy),
        )
        self._retired: set[Generation] = set()
        self._closers: set[asyncio.Task[None]] = set()
        shared = cache if cache is not None and cache.shared else None
        self.recent = RecentRequests(settings.feedback_window_s, shared=shared)
        self.tool_calls = RecentRequests(
            settings.feedback_window_s, shared=shared, prefix=TOOL_CALL_KEY_PREFIX
        )
        self.api_keys = api_keys or load_api_keys(settings, read_secret=False)
        self.limiter = build_limiter(settings, self.metrics)
        self.budgets = build_budgets(settings, self.metrics)
        self.breakers = Breakers(
            self.metrics,
            threshold=settings.breaker_failures,
            open_s=settings.breaker_open_s,
        )
        self.dispatcher = Dispatcher(
            self.metrics,
            self.breakers,
            self.budgets,
            retries=settings.retries_per_tier,
            retry_budget_s=settings.retry_budget_s,
            backoff_s=settings.retry_backoff_s,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> RouterService:
        """Load the policy and build every part the settings name."""
        policy = read_policy(settings)
        metrics = Metrics()
        classifier = build_classifier(settings, metrics=metrics)
        cache = build_cache(settings)
        sinks: tuple[Sink, ...] = ()
        if settings.emf_enabled:
            from llm_router.telemetry.emf import EMFWriter

            sinks = (EMFWriter(settings.emf_namespace),)
        api_keys = load_api_keys(settings)
        return cls(
            settings,
            policy,
            classifier,
            metrics=metrics,
            cache=cache,
            sinks=sinks,
            api_keys=api_keys,
        )

    @property
    def router(self) -> Router:
        """The router of the current policy."""
        return self.generation.router

    @property
    def providers(self) -> dict[str, Provider]:
        """The providers of the current policy."""
        return self.generation.providers

    @property
    def policy(self) -> Policy:
        """The current policy."""
        return self.generation.router.policy

    def provider_for(self, tier: str) -> Provider:
        """The provider serving a tier of the current policy."""
        return self.generation.provider_for(tier)

    def reload(self) -> bool:
        """Re-read the policy; on success swap policy and providers at once.

        Requests in flight keep the generation they started with; its providers
        are closed once the longest of its upstream timeouts has passed. An
        invalid policy keeps the running one, and is logged and counted.
        """
        try:
            policy = read_policy(self.settings)
            providers = _build_providers(policy)
        except ConfigError as exc:
            self.metrics.policy_reloads.labels("error").inc()
            logger.error("policy reload failed, keeping the running policy: %s", exc)
            return False

        old = self.generation
        router = Router(
            policy,
            old.router.classifier,
            self.metrics,
            cache=old.router.cache,
            cache_ttl_s=self.settings.cache_ttl_s,
        )
        self.generation = Generation(router, providers)
        self.metrics.policy_reloads.labels("ok").inc()
        logger.info(
            "policy %r reloaded (version %s)", policy.name, router.policy_version
        )
        self._retire(old)
        return True

    def _retire(self, old: Generation) -> None:
        self._retired.add(old)
        linger = max((t.timeouts.total for t in old.policy.tiers.values()), default=0)

        async def close_later() -> None:
            await asyncio.sleep(linger + 1)
            await self._close_generation(old)

        try:
            task = asyncio.get_running_loop().create_task(close_later())
        except RuntimeError:  # no loop (the CLI): nothing can be in flight
            return
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def _close_generation(self, generation: Generation) -> None:
        self._retired.discard(generation)
        for provider in generation.providers.values():
            await provider.aclose()

    async def aclose(self) -> None:
        """Close upstream pools, shared stores, the cache and the classifier."""
        for task in list(self._closers):
            task.cancel()
        for generation in [*self._retired, self.generation]:
            await self._close_generation(generation)
        await self.budgets.aclose()
        if self.limiter is not None:
            await self.limiter.aclose()
        await self.recent.drain()
        await self.tool_calls.drain()
        if self.router.cache is not None:
            await self.router.cache.aclose()
        await self.router.classifier.aclose()


class Generation:
    """One policy with the providers built for it; swapped whole on reload."""

    __slots__ = ("has_budgets", "policy", "providers", "router")

    def __init__(self, router: Router, providers: dict[str, Provider]) -> None:
        self.router = router
        self.policy = router.policy
        self.providers = providers
        self.has_budgets = any(
            tier.daily_budget_usd is not None for tier in self.policy.tiers.values()
        )

    def provider_for(self, tier: str) -> Provider:
        """The provider serving a tier of this generation's policy."""
        return self.providers[self.policy.tiers[tier].provider]


def build_limiter(settings: Settings, metrics: Metrics) -> RateLimiter | None:
    """The per-key rate limiter, or None when no limit is set."""
    if (
        settings.rate_limit_requests_per_min is None
        and settings.rate_limit_tokens_per_min is None
    ):
        return None
    redis = connect_redis(settings) if settings.limits_backend == "redis" else None
    return RateLimiter(
        metrics,
        requests_per_min=settings.rate_limit_requests_per_min,
        tokens_per_min=settings.rate_limit_tokens_per_min,
        redis=redis,
    )


def build_budgets(settings: Settings, metrics: Metrics) -> Budgets:
    """Daily tier budgets, with spend in the store the settings name."""
    store: SpendStore | None = None
    if settings.budgets_backend == "redis":
        store = RedisSpend(connect_redis(settings))
    elif settings.budgets_backend == "dynamodb":
        store = DynamoDBSpend(
            settings.budgets_dynamodb_table,
            region=settings.dynamodb_region or settings.aws_region,
            endpoint_url=settings.dynamodb_endpoint_url,
            timeout_s=max(settings.store_timeout_s, 1.0),
        )
    return Budgets(metrics, store, refresh_s=settings.budgets_refresh_s)


def read_policy(settings: Settings) -> Policy:
    """The inline policy, the policy file, or the embedded default, in that order."""
    if settings.policy is not None:
        policy = parse_policy(settings.policy, source="LLM_ROUTER_POLICY")
    elif settings.policy_file is not None:
        policy = load_policy(settings.policy_file)
    else:
        policy = load_default_policy()
    return apply_tier_targets(policy, settings.tier_targets)


def apply_tier_targets(policy: Policy, targets: dict[str, str]) -> Policy:
    """Point tiers at stack-provided invoke ids (e.g. inference-profile ARNs)."""
    if not targets:
        return policy
    unknown = sorted(set(targets) - set(policy.tiers))
    if unknown:
        msg = (
            f"LLM_ROUTER_TIER_TARGETS names unknown tier {unknown[0]!r}. "
            f"Known tiers: {', '.join(policy.tiers)}."
        )
        raise ConfigError(msg)
    tiers = {
        name: tier.model_copy(update={"target": targets[name]})
        if name in targets
        else tier
        for name, tier in policy.tiers.items()
    }
    return policy.model_copy(update={"tiers": tiers})


def build_cache(settings: Settings) -> DecisionCache | None:
    """The decision cache the settings name (memory by default)."""
    if settings.cache_backend == "none":
        return None
    if settings.cache_backend == "memory":
        from llm_router.cache.memory import MemoryCache

        return MemoryCache(settings.cache_max_entries)
    if settings.cache_backend == "redis":
        from llm_router.cache.redis import RedisCache

        return RedisCache.from_settings(settings)
    if settings.cache_backend == "dynamodb":
        from llm_router.cache.dynamodb import DynamoDBCache

        return DynamoDBCache.from_settings(settings)
    msg = (
        f"Cache backend {settings.cache_backend!r} is unknown. Known backends: "
        "memory, redis, dynamodb, none."
    )
    raise ConfigError(msg)


def _build_providers(policy: Policy) -> dict[str, Provider]:
    used = {tier.provider for tier in policy.tiers.values()}
    return {
        name: build_provider(name, config)
        for name, config in policy.providers.items()
        if name in used
    }
