"""The large stack's config is refused before any resource, with clear errors."""

from __future__ import annotations

import pulumi
import pytest
from large_support import read_large_config

from infra.large import require_ngc_key
from infra.large.config import in_cluster_service
from infra.mocking import MockedResource, run_program


def refused(overrides: dict[str, object]) -> str:
    """Run the large stack with bad config; the message, after checking nothing ran."""
    declared: list[MockedResource] = []
    with pytest.raises(pulumi.RunError) as failed:
        run_program("large", overrides, record=declared)
    assert declared == [], "config errors must come before any resource"
    return str(failed.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nodeAmiAlias": "al2023@latest"}, "pin an AL2023 release"),
        ({"clusterPublicAccessCidrs": ["0.0.0.0/0"]}, "opens the Kubernetes API"),
        ({"gpuInstanceFamilies": ["p3"]}, "accepted families: g4dn, g5"),
        ({"nimImages": ["small=llama"]}, "no pinned image for tier 'small'"),
        ({"nimMaxReplicas": ["*=9"]}, "above gpuSpotMaxGpus (8)"),
        ({"certificateArn": ""}, "certificateArn = ''"),
        ({"gpuConsolidateAfter": "soon"}, "gpuConsolidateAfter = 'soon'"),
        ({"nimImages": ["*=nvcr.io/nim/a/b:1"]}, "images have no '*' default"),
    ],
)
def test_bad_large_config_is_refused_with_the_key_and_the_fix(
    overrides: dict[str, object], message: str
) -> None:
    assert message in refused(overrides)


def test_an_empty_ngc_key_is_refused_when_a_tier_runs_in_the_cluster() -> None:
    large = read_large_config()

    with pytest.raises(ValueError, match="ngcApiKey is empty, but tiers small"):
        require_ngc_key("", large)
    assert require_ngc_key("key", large) == "key"


def test_only_http_urls_of_cluster_services_count_as_in_cluster() -> None:
    assert in_cluster_service("http://nim-small.llm-router.svc:8000/v1") == (
        "nim-small",
        "llm-router",
    )
    assert in_cluster_service("http://nim.ns.svc.cluster.local:8000/v1") == (
        "nim",
        "ns",
    )
    assert in_cluster_service("https://api.openai.com/v1") is None
    assert in_cluster_service("http://10.0.0.1:8000/v1") is None


def test_an_empty_public_cidr_list_keeps_the_endpoint_private() -> None:
    run = run_program("large", {"clusterPublicAccessCidrs": []})
    cluster = run.one("eks:index:Cluster").inputs

    assert cluster["endpointPrivateAccess"] is True
    assert cluster["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in cluster
