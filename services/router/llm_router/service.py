"""The running router: policy, classifier, providers, cache and telemetry.

One `RouterService` lives in each process. The HTTP layer reads it from
`app.state.service`; the CLI builds one without a server.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

from llm_router.cache.base import DecisionCache
from llm_router.classifiers.base import Classifier
from llm_router.classifiers.factory import build_classifier
from llm_router.errors import ConfigError
from llm_router.policy.loader import load_default_policy, load_policy, parse_policy
from llm_router.policy.schema import Policy
from llm_router.providers import Provider, build_provider
from llm_router.routing.router import Router
from llm_router.settings import Settings
from llm_router.telemetry.metrics import Metrics
from llm_router.telemetry.records import Recorder, Sink

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class RecentRequest:
    """What feedback needs to know about a request it refers to."""

    tier: str
    task: str
    expires: float


class RecentRequests:
    """Bounded, expiring memory of routed requests, for `/v1/feedback`."""

    def __init__(self, window_s: int, max_entries: int = 100_000) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._entries: OrderedDict[str, RecentRequest] = OrderedDict()

    def remember(self, request_id: str, tier: str, task: str) -> None:
        """Record a routed request."""
        expires = time.monotonic() + self.window_s
        self._entries[request_id] = RecentRequest(tier, task, expires)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def find(self, request_id: str) -> RecentRequest | None:
        """The request, if it is known and has not expired."""
        entry = self._entries.get(request_id)
        if entry is None or entry.expires < time.monotonic():
            return None
        return entry


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
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.recorder = Recorder(self.metrics, sinks)
        self.router = Router(
            policy,
            classifier,
            self.metrics,
            cache=cache,
            cache_ttl_s=settings.cache_ttl_s,
        )
        self.providers: dict[str, Provider] = _build_providers(policy)
        self.recent = RecentRequests(settings.feedback_window_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> RouterService:
        """Load the policy and build every part the settings name."""
        policy = read_policy(settings)
        classifier = build_classifier(settings)
        cache = build_cache(settings)
        sinks: tuple[Sink, ...] = ()
        if settings.emf_enabled:
            from llm_router.telemetry.emf import EMFWriter

            sinks = (EMFWriter(settings.emf_namespace),)
        return cls(settings, policy, classifier, cache=cache, sinks=sinks)

    @property
    def policy(self) -> Policy:
        return self.router.policy

    def provider_for(self, tier: str) -> Provider:
        """The provider serving a tier of the current policy."""
        return self.providers[self.policy.tiers[tier].provider]

    async def aclose(self) -> None:
        """Close upstream pools, the cache and the classifier."""
        for provider in self.providers.values():
            await provider.aclose()
        if self.router.cache is not None:
            await self.router.cache.aclose()
        await self.router.classifier.aclose()


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
    msg = (
        f"Cache backend {settings.cache_backend!r} is not available in this "
        "build. Known backends: memory, none."
    )
    raise ConfigError(msg)


def _build_providers(policy: Policy) -> dict[str, Provider]:
    used = {tier.provider for tier in policy.tiers.values()}
    return {
        name: build_provider(name, config)
        for name, config in policy.providers.items()
        if name in used
    }
