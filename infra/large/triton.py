"""The classifier on Triton: model repository in S3, image in ECR, a Deployment.

The program uploads `services/router/triton/model_repository` file by file to
an encrypted, versioned, private bucket; Triton reads it from there with a
role only its service account can assume (IRSA, see `identity.py`), allowed
to list that bucket and read its objects and nothing else. The image is
built from the Triton Dockerfile next to the repository. Pods run on the CPU
pool by default (a classification costs microseconds) or on GPU from config.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build
import pulumi_kubernetes as k8s

from infra.components.router_image import RouterImage, RouterImageArgs
from infra.iam import statement
from infra.large.config import LargeConfig
from infra.large.gpu import GPU_TOLERATION
from infra.large.identity import (
    OidcProvider,
    RoleSpec,
    ServiceAccountRef,
    declare_pod_role,
)
from infra.large.karpenter import CPU_POOL, GPU_RESOURCE, POOL_LABEL, TIER_LABEL

with warnings.catch_warnings():
    # The s3 module loads lazily, on first attribute access, and then warns
    # about its deprecated *V2 classes; this stack uses their replacements
    # (Bucket, BucketVersioning, ...), so the module is loaded here, quietly.
    warnings.filterwarnings(
        "ignore",
        message=r"\S*s3[./]\S+ has been deprecated in favor of",
        category=DeprecationWarning,
    )
    BUCKET = aws.s3.Bucket

from infra.large.workload import (
    SHM_PATH,
    TMP_PATH,
    container_security,
    declare_scaling,
    http_probe,
    pod_security,
)

DOCKERFILE = "services/router/triton/Dockerfile"
MODEL_REPOSITORY = Path("services/router/triton/model_repository")
PREFIX = "model_repository"
NAME = "triton"
HTTP_PORT = 8000
GRPC_PORT = 8001
METRICS_PORT = 8002
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "llm-router"}


@dataclass(frozen=True)
class TritonArgs:
    """Where the sources are, the cluster, and sizing."""

    root: Path
    large: LargeConfig
    cluster_name: str
    region: str
    oidc: OidcProvider
    provider: k8s.Provider
    namespace: k8s.core.v1.Namespace
    ready: Sequence[pulumi.Resource]
    build_on_preview: bool
    tags: Mapping[str, str]


class TritonClassifier(pulumi.ComponentResource):
    """Bucket, objects, image, IRSA role, Deployment, Services, HPA and PDB."""

    bucket: aws.s3.Bucket
    grpc_address: str
    deployment: k8s.apps.v1.Deployment

    def __init__(
        self,
        name: str,
        args: TritonArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:TritonClassifier", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self._ns = args.large.namespace
        self.grpc_address = f"{NAME}.{self._ns}.svc:{GRPC_PORT}"

        self.bucket = self._declare_bucket()
        objects = self._upload_model_repository()
        image = RouterImage(
            f"{name}-image",
            RouterImageArgs(
                root=args.root,
                build_on_preview=args.build_on_preview,
                tags=args.tags,
                dockerfile=DOCKERFILE,
                # Triton's images and the g5/g6 GPU nodes are x86.
                platform=docker_build.Platform.LINUX_AMD64,
            ),
            opts=self._child,
        )
        role = declare_pod_role(
            f"{name}-reader",
            RoleSpec(
                account=ServiceAccountRef(self._ns, NAME),
                statements=[
                    statement("ListModelBucket", ["s3:ListBucket"], [self.bucket.arn]),
                    statement(
                        "ReadModelRepository",
                        ["s3:GetObject"],
                        [pulumi.Output.concat(self.bucket.arn, f"/{PREFIX}/*")],
                    ),
                ],
                oidc=args.oidc,
                tags=args.tags,
            ),
            cluster_name=args.cluster_name,
            parent=self,
        )
        on_cluster = pulumi.ResourceOptions(
            parent=self,
            provider=args.provider,
            depends_on=[args.namespace, *args.ready],
        )
        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata={
                "name": NAME,
                "namespace": self._ns,
                "labels": LABELS,
                "annotations": {"eks.amazonaws.com/role-arn": role.arn},
            },
            opts=on_cluster,
        )
        self.deployment = self._declare_deployment(image.image_ref, [account, *objects])
        self._declare_services(on_cluster)
        declare_scaling(
            NAME,
            namespace=self._ns,
            labels=LABELS,
            deployment=self.deployment,
            min_replicas=args.large.triton_min_replicas,
            max_replicas=args.large.triton_max_replicas,
            cpu_percent=70,
            opts=on_cluster,
        )

        self.register_outputs(
            {"bucket": self.bucket.bucket, "grpcAddress": self.grpc_address}
        )

    def _declare_bucket(self) -> aws.s3.Bucket:
        tags = dict(self._args.tags)
        bucket = aws.s3.Bucket(
            f"{self._name}-models",
            bucket_prefix=f"{self._name}-models-",
            # The content is rebuilt from the repository on every `up`.
            force_destroy=True,
            tags=tags,
            opts=self._child,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{self._name}-models-private",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self._child,
        )
        aws.s3.BucketVersioning(
            f"{self._name}-models-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=self._child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{self._name}-models-encryption",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms"
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=self._child,
        )
        aws.s3.BucketPolicy(
            f"{self._name}-models-tls-only",
            bucket=bucket.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "DenyPlainHttp",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [
                                bucket.arn,
                                pulumi.Output.concat(bucket.arn, "/*"),
                            ],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                }
            ),
            opts=self._child,
        )
        return bucket

    def _upload_model_repository(self) -> list[aws.s3.BucketObjectv2]:
        source = self._args.root / MODEL_REPOSITORY
        files = sorted(
            path
            for path in source.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        )
        if not files:
            msg = f"The Triton model repository {source} has no files to upload."
            raise FileNotFoundError(msg)
        uploaded = []
        for path in files:
            relative = path.relative_to(source).as_posix()
            uploaded.append(
                aws.s3.BucketObjectv2(
                    f"{self._name}-{relative.replace('/', '-')}",
                    bucket=self.bucket.id,
                    key=f"{PREFIX}/{relative}",
                    source=pulumi.FileAsset(str(path)),
                    # A changed file is uploaded again; an unchanged one is not.
                    source_hash=hashlib.sha256(path.read_bytes()).hexdigest(),
                    tags=dict(self._args.tags),
                    opts=self._child,
                )
            )
        return uploaded

    def _declare_deployment(
        self, image: pulumi.Input[str], after: list[pulumi.Resource]
    ) -> k8s.apps.v1.Deployment:
        args, large = self._args, self._args.large
        resources = {
            "requests": {"cpu": "1", "memory": "2Gi"},
            "limits": {"cpu": "2", "memory": "4Gi"},
        }
        if large.triton_gpu:
            resources["limits"][GPU_RESOURCE] = "1"
            placement = {
                "node_selector": {TIER_LABEL: "classifier"},
                "tolerations": [GPU_TOLERATION],
            }
        else:
            placement = {
                "node_selector": {
                    POOL_LABEL: CPU_POOL,
                    "kubernetes.io/arch": "amd64",
                }
            }
        repository = self.bucket.bucket.apply(lambda b: f"s3://{b}/{PREFIX}")
        return k8s.apps.v1.Deployment(
            f"{self._name}-deployment",
            metadata={"name": NAME, "namespace": self._ns, "labels": LABELS},
            # Pod specs mix typed dicts from workload.py; the SDK checks them.
            spec=cast(
                k8s.apps.v1.DeploymentSpecArgsDict,
                {
                    "replicas": large.triton_min_replicas,
                    "selector": {"match_labels": LABELS},
                    "template": {
                        "metadata": {"labels": LABELS},
                        "spec": {
                            "service_account_name": NAME,
                            "security_context": pod_security(),
                            **placement,
                            "topology_spread_constraints": [
                                {
                                    "max_skew": 1,
                                    "topology_key": "topology.kubernetes.io/zone",
                                    "when_unsatisfiable": "ScheduleAnyway",
                                    "label_selector": {"match_labels": LABELS},
                                }
                            ],
                            "containers": [
                                {
                                    "name": NAME,
                                    "image": image,
                                    "args": [
                                        pulumi.Output.concat(
                                            "--model-repository=", repository
                                        ),
                                        "--strict-readiness=true",
                                        "--exit-on-error=true",
                                    ],
                                    "env": [
                                        # Triton's S3 client needs the bucket's region.
                                        {
                                            "name": "AWS_DEFAULT_REGION",
                                            "value": args.region,
                                        },
                                        {"name": "AWS_REGION", "value": args.region},
                                        {"name": "TMPDIR", "value": TMP_PATH},
                                    ],
                                    "ports": [
                                        {"name": "http", "container_port": HTTP_PORT},
                                        {"name": "grpc", "container_port": GRPC_PORT},
                                        {
                                            "name": "metrics",
                                            "container_port": METRICS_PORT,
                                        },
                                    ],
                                    "resources": resources,
                                    "security_context": container_security(),
                                    "startup_probe": http_probe(
                                        "/v2/health/ready",
                                        HTTP_PORT,
                                        period=5,
                                        failures=60,
                                    ),
                                    "readiness_probe": http_probe(
                                        "/v2/health/ready",
                                        HTTP_PORT,
                                        period=5,
                                        failures=3,
                                    ),
                                    "liveness_probe": http_probe(
                                        "/v2/health/live",
                                        HTTP_PORT,
                                        period=10,
                                        failures=3,
                                    ),
                                    "volume_mounts": [
                                        {"name": "tmp", "mount_path": TMP_PATH},
                                        {"name": "shm", "mount_path": SHM_PATH},
                                    ],
                                }
                            ],
                            "volumes": [
                                # The S3 repository is copied here at start.
                                {"name": "tmp", "empty_dir": {"size_limit": "1Gi"}},
                                # The Python backend talks to its stub over shared
                                # memory; the runtime's default 64 MiB is tight.
                                {
                                    "name": "shm",
                                    "empty_dir": {
                                        "medium": "Memory",
                                        "size_limit": "512Mi",
                                    },
                                },
                            ],
                        },
                    },
                },
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[args.namespace, *args.ready, *after],
            ),
        )

    def _declare_services(self, opts: pulumi.ResourceOptions) -> None:
        for service, port_name, port in (
            (NAME, "grpc", GRPC_PORT),
            (f"{NAME}-metrics", "metrics", METRICS_PORT),
        ):
            k8s.core.v1.Service(
                f"{self._name}-{port_name}",
                metadata={
                    "name": service,
                    "namespace": self._ns,
                    "labels": {**LABELS, "llm-router.dev/port": port_name},
                },
                spec={
                    "selector": LABELS,
                    "ports": [
                        {"name": port_name, "port": port, "target_port": port_name}
                    ],
                },
                opts=opts,
            )
