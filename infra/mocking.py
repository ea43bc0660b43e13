"""Run the program without a cloud or a CLI: Pulumi's mocks, recorded.

Used by the offline plan (`python -m infra.plan`) and by the tests. The mocks
echo every input back as an output (camelCase, as the engine would), add the
few computed outputs the program reads (ARNs, URLs, endpoints), and answer
only the invokes the program is known to make: a new invoke fails loudly
instead of silently returning nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

from infra.project import project_name, stack_config

ACCOUNT = "123456789012"
# Secrets a stack requires, filled with a placeholder unless given.
PLACEHOLDER_SECRETS = {"ngcApiKey": "mock-ngc-api-key"}


@dataclass
class MockedResource:
    """One resource the program declared, with the inputs it was given."""

    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    custom: bool
    urn: str = ""
    # URNs this resource waits for (explicit `depends_on` and inputs).
    dependencies: list[str] = field(default_factory=list)

    @property
    def parent_type(self) -> str:
        """Type token of the resource's parent (`pulumi:pulumi:Stack` at top level)."""
        chain = self.urn.split("::")[2].split("$")
        return chain[-2] if len(chain) > 1 else ""


@dataclass
class ProgramRun:
    """What one run of the program declared and exported."""

    stack: str
    resources: list[MockedResource]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_token: str) -> list[MockedResource]:
        """Every declared resource of this type."""
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> MockedResource:
        """The single resource of this type; fails if there are none or several."""
        found = self.of_type(type_token)
        if len(found) != 1:
            msg = f"expected one {type_token}, found {len(found)}"
            raise AssertionError(msg)
        return found[0]


class KitMocks(pulumi.runtime.Mocks):
    """Mocks that answer like AWS would, and record every resource."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.resources: list[MockedResource] = []

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str, dict[str, Any]]:
        """Echo the inputs, add computed outputs, and record the resource."""
        name = args.inputs.get("name") or args.name
        outputs = {**args.inputs, "name": name}
        outputs.setdefault("arn", self._arn(args.typ, name))
        outputs.update(self._computed(args.typ, name, args.inputs))
        self.resources.append(
            MockedResource(
                type=args.typ,
                name=args.name,
                inputs=dict(args.inputs),
                outputs=outputs,
                custom=bool(args.custom),
            )
        )
        return f"{args.name}-id", outputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        """Answer the invokes the program makes; refuse any other."""
        answers: dict[str, Callable[[], dict[str, Any]]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": lambda: {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/plan",
                "id": ACCOUNT,
                "userId": "AIDAPLAN",
            },
            "aws:index/getPartition:getPartition": lambda: {
                "id": "aws",
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
            },
            "aws:ecr/getAuthorizationToken:getAuthorizationToken": lambda: {
                "id": self.region,
                "userName": "AWS",
                "password": "mock-ecr-password",
                "authorizationToken": "mock-token",
                "expiresAt": "2030-01-01T00:00:00Z",
                "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{self.region}.amazonaws.com",
            },
        }
        if args.token not in answers:
            msg = f"The mocks do not answer {args.token!r}; add it to KitMocks.call."
            raise NotImplementedError(msg)
        # An empty failure list, not None: the mock monitor iterates it.
        return answers[args.token](), []

    def _arn(self, type_token: str, name: str) -> str:
        service = type_token.split(":")[1].split("/")[0]
        return f"arn:aws:{service}:{self.region}:{ACCOUNT}:{name}"

    def _computed(
        self, type_token: str, name: str, inputs: Mapping[str, Any]
    ) -> dict[str, Any]:
        region, digest = self.region, hashlib.sha256(name.encode()).hexdigest()
        computed: dict[str, dict[str, Any]] = {
            "aws:bedrock/inferenceProfile:InferenceProfile": {
                "arn": f"arn:aws:bedrock:{inputs.get('region', region)}:{ACCOUNT}:"
                f"application-inference-profile/{digest[:12]}",
            },
            "aws:ecr/repository:Repository": {
                "arn": f"arn:aws:ecr:{region}:{ACCOUNT}:repository/{name}",
                "registryId": ACCOUNT,
                "repositoryUrl": f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{name}",
            },
            "docker-build:index:Image": {"digest": f"sha256:{digest}"},
            "aws:lambda/function:Function": {
                "arn": f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}",
            },
            "aws:lambda/functionUrl:FunctionUrl": {
                "functionUrl": f"https://{digest[:20]}.lambda-url.{region}.on.aws/",
            },
            "aws:dynamodb/table:Table": {
                "arn": f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}",
            },
            "aws:cloudwatch/logGroup:LogGroup": {
                "arn": f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{name}",
            },
            "aws:secretsmanager/secret:Secret": {
                "arn": f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{name}-Ab12",
            },
            "aws:iam/role:Role": {"arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"},
            "aws:iam/policy:Policy": {"arn": f"arn:aws:iam::{ACCOUNT}:policy/{name}"},
            "random:index/randomPassword:RandomPassword": {
                "result": digest[: int(inputs.get("length", 32))],
            },
            "awsx:ec2:Vpc": {
                "vpcId": "vpc-0plan",
                "privateSubnetIds": ["subnet-private-a", "subnet-private-b"],
                "publicSubnetIds": ["subnet-public-a", "subnet-public-b"],
                "isolatedSubnetIds": [],
                # Resource lists the real component returns; none under mocks.
                "natGateways": [],
                "subnets": [],
            },
            "aws:lb/loadBalancer:LoadBalancer": {
                "arnSuffix": f"app/{name}/{digest[:16]}",
                "dnsName": f"{name}-{digest[:8]}.{region}.elb.amazonaws.com",
                "zoneId": "Z35SXDOTRQ7X7K",
            },
            "aws:lb/targetGroup:TargetGroup": {
                "arnSuffix": f"targetgroup/{name}/{digest[:16]}",
            },
            "aws:elasticache/replicationGroup:ReplicationGroup": {
                "primaryEndpointAddress": f"master.{name}.cache.amazonaws.com",
            },
            # The large stack's computed outputs.
            "eks:index:Cluster": {
                "kubeconfigJson": '{"apiVersion": "v1", "kind": "Config"}',
                "clusterSecurityGroupId": f"sg-{digest[:17]}",
                "oidcProviderArn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/"
                f"oidc.eks.{region}.amazonaws.com/id/{digest[:32].upper()}",
                "oidcProviderUrl": f"https://oidc.eks.{region}.amazonaws.com/id/"
                f"{digest[:32].upper()}",
            },
            "aws:sqs/queue:Queue": {
                "arn": f"arn:aws:sqs:{region}:{ACCOUNT}:{name}",
                "url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{name}",
            },
            "aws:s3/bucket:Bucket": {
                "bucket": f"{inputs.get('bucketPrefix', name)}{digest[:8]}",
                "arn": f"arn:aws:s3:::{inputs.get('bucketPrefix', name)}{digest[:8]}",
            },
        }
        return computed.get(type_token, {})


class _RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also noting each resource's URN (for parentage)."""

    def __init__(self, mocks: KitMocks) -> None:
        super().__init__(mocks)
        self.urns: dict[tuple[str, str], str] = {}
        self.dependencies: dict[str, list[str]] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC name)
        """Register as usual, noting the URN by type and name."""
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        self.urns[request.type, request.name] = response.urn
        self.dependencies[response.urn] = list(request.dependencies)
        return response


def _ensure_event_loop() -> None:
    """Give this thread an event loop if it has none.

    The Pulumi SDK's mocks run on the thread's current loop, and `asyncio.run`
    (an async caller or test before this one) leaves the thread without one.
    """
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def run_program(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    program: Callable[[], Mapping[str, pulumi.Input[object]]] | None = None,
    record: list[MockedResource] | None = None,
) -> ProgramRun:
    """Run the program for `stack` under mocks.

    Config is what the CLI would pass: `Pulumi.yaml` defaults, then the stack
    file, then `overrides` (bare keys get the project namespace). Resources
    are recorded into `record` when given, so a failed run can be inspected.
    """
    from infra.program import build_program

    raw = stack_config(stack, overrides)
    project = project_name()
    for key, placeholder in PLACEHOLDER_SECRETS.items():
        # A required credential no stack file may hold in clear text.
        if not raw.get(f"{project}:{key}"):
            raw[f"{project}:{key}"] = placeholder
    _ensure_event_loop()
    mocks = KitMocks(region=raw.get("aws:region", "us-east-1"))
    if record is not None:
        mocks.resources = record
    monitor = _RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=False, monitor=monitor
    )
    secret_keys = [f"{project}:{key}" for key in ("apiKeys", *PLACEHOLDER_SECRETS)]
    pulumi.runtime.set_all_config(raw, secret_keys=secret_keys)
    run = ProgramRun(stack=stack, resources=mocks.resources)

    def execute() -> pulumi.Output[None]:
        outputs = (program or build_program)()
        return pulumi.Output.from_input(dict(outputs)).apply(run.outputs.update)

    pulumi.runtime.test(execute)()  # type: ignore[no-untyped-call]
    for resource in run.resources:
        resource.urn = monitor.urns.get((resource.type, resource.name), "")
        resource.dependencies = monitor.dependencies.get(resource.urn, [])
    return run


def is_taggable(type_token: str) -> bool:
    """Whether an AWS resource type takes `tags` (found from its SDK class)."""
    package, module, name = type_token.split(":")
    if package not in {"aws", "awsx"}:
        # docker-build's `tags` are image tags, not resource tags.
        return False
    python_module = f"pulumi_{package}"
    if module not in {"index", ""}:
        python_module += "." + module.split("/")[0].replace("lambda", "lambda_")
    cls = getattr(importlib.import_module(python_module), name)
    return "tags" in inspect.signature(cls._internal_init).parameters
