"""The large stack's workloads: hardened Deployments, the router, Triton, NIM."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from large_support import DEPLOYMENT, chart, containers, environment, named

from infra.large.stack import _ingress_url
from infra.mocking import MockedResource, ProgramRun, run_program

ROOT = Path(__file__).resolve().parents[3]
NIM_POLICY = "services/router/config/nim.yaml"
MODEL_REPOSITORY = ROOT / "services/router/triton/model_repository"
# How the engine marks a secret value in resource inputs: this key holding
# this value (pulumi.runtime.rpc's special signature key and secret sig).
SIGNATURE_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIGNATURE = "1b47061264138c4ac30d75fd1eb44270"


@pytest.fixture(scope="module")
def medium_with_nim_policy() -> ProgramRun:
    """The medium stack deploying the large stack's policy file."""
    return run_program("medium", {"policyFile": NIM_POLICY})


def test_every_deployment_is_hardened_sized_and_probed(large_run: ProgramRun) -> None:
    deployments = large_run.of_type(DEPLOYMENT)

    assert {d.inputs["metadata"]["name"] for d in deployments} == {
        "llm-router",
        "triton",
    }
    for deployment in deployments:
        pod = deployment.inputs["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        mounts = set()
        for container in containers(deployment):
            name = f"{deployment.name}/{container['name']}"
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert {"cpu", "memory"} <= set(resources["limits"]), name
            assert container["readinessProbe"]["httpGet"]["path"], name
            assert container["livenessProbe"]["httpGet"]["path"], name
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            mounts |= {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        assert empty_dirs == {v["name"] for v in pod["volumes"]}


def test_every_deployment_has_an_autoscaler_and_a_disruption_budget(
    large_run: ProgramRun,
) -> None:
    for deployment in large_run.of_type(DEPLOYMENT):
        name = deployment.inputs["metadata"]["name"]
        hpa = named(
            large_run, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", name
        )
        pdb = named(large_run, "kubernetes:policy/v1:PodDisruptionBudget", name)

        assert hpa.inputs["spec"]["scaleTargetRef"]["name"] == name
        assert hpa.inputs["spec"]["minReplicas"] >= 2
        assert pdb.inputs["spec"]["minAvailable"] == 1
        labels = deployment.inputs["spec"]["selector"]["matchLabels"]
        assert pdb.inputs["spec"]["selector"]["matchLabels"] == labels


def test_the_router_probes_health_and_readiness(large_run: ProgramRun) -> None:
    [router] = containers(named(large_run, DEPLOYMENT, "llm-router"))

    assert router["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert router["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8080}
    assert router["resources"]["limits"] == {"cpu": "1000m", "memory": "512Mi"}


def test_the_router_classifies_on_triton_with_its_services_address(
    large_run: ProgramRun,
) -> None:
    env = environment(named(large_run, DEPLOYMENT, "llm-router"))
    grpc = named(large_run, "kubernetes:core/v1:Service", "triton")

    assert env["LLM_ROUTER_CLASSIFIER"] == "triton"
    assert env["LLM_ROUTER_TRITON_URL"] == "triton.llm-router.svc:8001"
    assert grpc.inputs["spec"]["ports"][0]["port"] == 8001
    assert env["LLM_ROUTER_EMF_ENABLED"] == "true"
    assert env["LLM_ROUTER_API_KEYS_SECRET_ARN"].startswith("arn:aws:secretsmanager:")


def test_the_router_policy_is_byte_identical_to_the_medium_stacks(
    large_run: ProgramRun, medium_with_nim_policy: ProgramRun
) -> None:
    large_env = environment(named(large_run, DEPLOYMENT, "llm-router"))
    task = medium_with_nim_policy.one("aws:ecs/taskDefinition:TaskDefinition")
    medium_env = {
        item["name"]: item["value"]
        for item in json.loads(task.inputs["containerDefinitions"])[0]["environment"]
    }

    assert large_env["LLM_ROUTER_POLICY"] == medium_env["LLM_ROUTER_POLICY"]
    assert large_env["LLM_ROUTER_POLICY"] == (ROOT / NIM_POLICY).read_text()
    shared = set(large_env) & set(medium_env)
    assert {"LLM_ROUTER_TIER_TARGETS", "LLM_ROUTER_EMF_NAMESPACE"} <= shared
    # Where each stack's own API-key secret and Redis live.
    for key in shared - {"LLM_ROUTER_API_KEYS_SECRET_ARN", "LLM_ROUTER_REDIS_URL"}:
        assert large_env[key] == medium_env[key], key


def test_the_router_is_exposed_over_https_only_through_an_alb(
    large_run: ProgramRun,
) -> None:
    ingress = large_run.one("kubernetes:networking.k8s.io/v1:Ingress")
    annotations = ingress.inputs["metadata"]["annotations"]
    controller = chart(large_run, "aws-load-balancer-controller")

    assert ingress.inputs["spec"]["ingressClassName"] == "alb"
    assert json.loads(annotations["alb.ingress.kubernetes.io/listen-ports"]) == [
        {"HTTPS": 443}
    ]
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"].startswith(
        "arn:aws:acm:"
    )
    assert annotations["alb.ingress.kubernetes.io/ssl-policy"].startswith(
        "ELBSecurityPolicy-TLS13"
    )
    assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == "/readyz"
    assert controller.urn in ingress.dependencies
    assert controller.inputs["values"]["clusterName"] == "llmr-large"


def test_the_model_repository_is_uploaded_file_by_file_to_a_private_bucket(
    large_run: ProgramRun,
) -> None:
    bucket = large_run.one("aws:s3/bucket:Bucket")
    objects = large_run.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    files = {
        path.relative_to(MODEL_REPOSITORY).as_posix()
        for path in MODEL_REPOSITORY.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    block = large_run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    encryption = large_run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:"
        "BucketServerSideEncryptionConfiguration"
    )
    versioning = large_run.one("aws:s3/bucketVersioning:BucketVersioning")

    assert {"task_classifier/config.pbtxt", "task_classifier/1/model.py"} <= files
    assert {o.inputs["key"] for o in objects} == {
        f"model_repository/{f}" for f in files
    }
    assert all(o.inputs["bucket"] == f"{bucket.name}-id" for o in objects)
    assert all(
        block.inputs[key]
        for key in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    [rule] = encryption.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}


def test_triton_serves_the_bucket_on_grpc_and_metrics_ports(
    large_run: ProgramRun,
) -> None:
    bucket = large_run.one("aws:s3/bucket:Bucket").outputs["bucket"]
    deployment = named(large_run, DEPLOYMENT, "triton")
    [triton] = containers(deployment)
    metrics = named(large_run, "kubernetes:core/v1:Service", "triton-metrics")
    account = named(large_run, "kubernetes:core/v1:ServiceAccount", "triton")
    image = next(
        i
        for i in large_run.of_type("docker-build:index:Image")
        if "triton" in i.inputs["dockerfile"]["location"]
    )

    assert f"--model-repository=s3://{bucket}/model_repository" in triton["args"]
    assert metrics.inputs["spec"]["ports"][0]["port"] == 8002
    assert triton["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert account.inputs["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert image.inputs["platforms"] == ["linux/amd64"]
    pod = deployment.inputs["spec"]["template"]["spec"]
    assert pod["nodeSelector"]["llm-router.dev/pool"] == "cpu"
    assert "nvidia.com/gpu" not in triton["resources"]["limits"]


def test_triton_moves_to_a_gpu_pool_when_configured() -> None:
    run = run_program("large", {"tritonGpu": True})
    [triton] = containers(named(run, DEPLOYMENT, "triton"))
    pod = named(run, DEPLOYMENT, "triton").inputs["spec"]["template"]["spec"]

    assert triton["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"llm-router.dev/tier": "classifier"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    named(run, "kubernetes:karpenter.sh/v1:NodePool", "gpu-spot-classifier")


def nim_service(run: ProgramRun, name: str) -> MockedResource:
    """The NIMService serving one policy provider's URL."""
    return named(run, "kubernetes:apps.nvidia.com/v1alpha1:NIMService", name)


def test_each_in_cluster_tier_gets_the_nim_its_policy_url_names(
    large_run: ProgramRun,
) -> None:
    for tier, gpus, maximum in (("small", 1, 3), ("medium", 2, 3), ("large", 4, 2)):
        service = nim_service(large_run, f"nim-{tier}")
        spec = service.inputs["spec"]
        cache = named(
            large_run, "kubernetes:apps.nvidia.com/v1alpha1:NIMCache", f"nim-{tier}"
        )

        assert service.inputs["metadata"]["namespace"] == "llm-router"
        assert spec["expose"]["service"] == {"type": "ClusterIP", "port": 8000}
        assert spec["readinessProbe"]["probe"]["httpGet"] == {
            "path": "/v1/health/ready",
            "port": 8000,
        }
        assert spec["resources"]["limits"]["nvidia.com/gpu"] == gpus
        # The HPA scales on CPU utilisation: without a request it cannot.
        assert spec["resources"]["requests"] == {"cpu": "2", "memory": "12Gi"}
        assert spec["scale"]["hpa"]["maxReplicas"] == maximum
        assert spec["userID"] != 0
        assert spec["groupID"] != 0
        assert spec["authSecret"] == "ngc-api-secret"
        assert spec["image"]["pullSecrets"] == ["ngc-secret"]
        assert spec["storage"]["nimCache"]["name"] == f"nim-{tier}"
        assert spec["nodeSelector"] == {"llm-router.dev/tier": tier}
        assert cache.inputs["spec"]["storage"]["pvc"]["volumeAccessMode"] == (
            "ReadWriteMany"
        )
        assert cache.urn in service.dependencies


def revealed(secret: MockedResource) -> dict[str, str]:
    """A Secret's data, after checking Pulumi kept it secret (encrypted in state)."""
    data = secret.inputs["stringData"]
    assert data.get(SIGNATURE_KEY) == SECRET_SIGNATURE, "stringData is not a secret"
    value: dict[str, str] = data["value"]
    return value


def test_the_ngc_key_reaches_the_cluster_only_as_secrets(
    large_run: ProgramRun,
) -> None:
    secrets = {
        s.inputs["metadata"]["name"]: s
        for s in large_run.of_type("kubernetes:core/v1:Secret")
    }
    pull = json.loads(revealed(secrets["ngc-secret"])[".dockerconfigjson"])

    assert revealed(secrets["ngc-api-secret"]) == {"NGC_API_KEY": "mock-ngc-api-key"}
    assert pull["auths"]["nvcr.io"]["username"] == "$oauthtoken"
    assert pull["auths"]["nvcr.io"]["password"] == "mock-ngc-api-key"


def test_a_policy_without_in_cluster_tiers_deploys_no_gpu_stack() -> None:
    run = run_program(
        "large",
        {"policyFile": "services/router/config/bedrock.yaml", "nimImages": []},
    )

    assert run.of_type("kubernetes:apps.nvidia.com/v1alpha1:NIMService") == []
    assert [
        p.inputs["metadata"]["name"]
        for p in run.of_type("kubernetes:karpenter.sh/v1:NodePool")
    ] == ["cpu"]
    assert len(run.of_type("aws:bedrock/inferenceProfile:InferenceProfile")) == 3
    [document] = [
        json.loads(r.inputs["policy"])
        for r in run.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.name.startswith("llmr-large-svc-pod-policy-")
    ]
    invoked = {a for s in document["Statement"] for a in s["Action"]}
    assert invoked == {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}


def test_the_url_output_is_the_albs_host_once_it_exists() -> None:
    status = SimpleNamespace(
        load_balancer=SimpleNamespace(
            ingress=[SimpleNamespace(hostname="k8s-llmrouter-1.elb.amazonaws.com")]
        )
    )

    assert _ingress_url(status) == "https://k8s-llmrouter-1.elb.amazonaws.com"
    assert _ingress_url(SimpleNamespace(load_balancer=None)) == ""
    assert _ingress_url(None) == ""


def test_model_caches_wait_for_their_storage_class_and_gpu_pools(
    large_run: ProgramRun,
) -> None:
    storage = named(
        large_run, "kubernetes:storage.k8s.io/v1:StorageClass", "efs-models"
    )
    pools = large_run.of_type("kubernetes:karpenter.sh/v1:NodePool")

    for cache in large_run.of_type("kubernetes:apps.nvidia.com/v1alpha1:NIMCache"):
        assert storage.urn in cache.dependencies, cache.name
        assert {p.urn for p in pools} <= set(cache.dependencies), cache.name


def test_router_pods_share_one_encrypted_redis_reachable_from_the_cluster_only(
    large_run: ProgramRun,
) -> None:
    deployment = named(large_run, DEPLOYMENT, "llm-router")
    env = environment(deployment)
    [token] = [
        item["valueFrom"]["secretKeyRef"]
        for item in containers(deployment)[0]["env"]
        if item["name"] == "LLM_ROUTER_REDIS_AUTH_TOKEN"
    ]
    secret = named(large_run, "kubernetes:core/v1:Secret", "llm-router-redis")
    redis = large_run.one("aws:elasticache/replicationGroup:ReplicationGroup")
    [rule] = [
        r.inputs
        for r in large_run.of_type(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
        )
        if "redis" in r.name
    ]
    cluster = large_run.one("eks:index:Cluster")

    assert env["LLM_ROUTER_CACHE_BACKEND"] == "redis"
    assert env["LLM_ROUTER_LIMITS_BACKEND"] == "redis"
    assert env["LLM_ROUTER_BUDGETS_BACKEND"] == "redis"
    assert env["LLM_ROUTER_REDIS_URL"].startswith("rediss://")
    assert token == {"name": "llm-router-redis", "key": "auth-token"}
    assert set(revealed(secret)) == {"auth-token"}
    assert redis.inputs["transitEncryptionEnabled"] is True
    assert redis.inputs["atRestEncryptionEnabled"] is True
    assert rule["fromPort"] == 6379
    assert (
        rule["referencedSecurityGroupId"] == cluster.outputs["clusterSecurityGroupId"]
    )
    assert "cidrIpv4" not in rule
