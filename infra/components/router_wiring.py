"""What every stack gives the router: the policy, per-tier targets, API keys, EMF.

Every runtime (Lambda, ECS, EKS) gets the same environment from here, so the
policy text deployed by one stack is byte-identical to another's for the same
input. Each stack adds only its cache settings and how the API-key secret is
delivered (an ECS secret, or an ARN the Lambda reads at start).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.components.bedrock_profiles import BedrockProfiles, BedrockProfilesArgs
from infra.config import KitConfig
from infra.router_policy import RouterPolicy

ROUTER_PORT = 8080
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"


@dataclass(frozen=True)
class RouterWiringArgs:
    """The validated policy and the runtime-independent settings."""

    policy: RouterPolicy
    region: str
    emf_namespace: str
    api_keys: pulumi.Input[str]
    tags: Mapping[str, str]

    @classmethod
    def for_stack(cls, config: KitConfig) -> RouterWiringArgs:
        """The wiring every stack gives its router, taken from the stack config."""
        return cls(
            policy=config.policy,
            region=config.region,
            emf_namespace=config.emf_namespace,
            api_keys=config.api_keys,
            tags=dict(config.tags),
        )


class RouterWiring(pulumi.ComponentResource):
    """Inference profiles, the API-key secret and the router's base environment."""

    environment: dict[str, pulumi.Input[str]]
    profiles: BedrockProfiles
    api_keys_secret: aws.secretsmanager.Secret
    generated_api_key: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: RouterWiringArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:RouterWiring", name, None, opts)
        self._name = name
        self._args = args

        self.profiles = BedrockProfiles(
            f"{name}-bedrock",
            BedrockProfilesArgs(tiers=args.policy.bedrock_tiers, tags=args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.api_keys_secret = self._declare_api_keys_secret()
        self.environment = self._build_environment()

        self.register_outputs(
            {
                "profileArns": self.profiles.profile_arns,
                "apiKeysSecretArn": self.api_keys_secret.arn,
            }
        )

    @property
    def invoke_policy(self) -> pulumi.Output[str] | None:
        """IAM document allowing Bedrock only through the tier profiles."""
        return self.profiles.invoke_policy

    def _declare_api_keys_secret(self) -> aws.secretsmanager.Secret:
        child = pulumi.ResourceOptions(parent=self)
        generated = random.RandomPassword(
            f"{self._name}-api-key", length=48, special=False, opts=child
        )
        self.generated_api_key = pulumi.Output.secret(generated.result)
        secret = aws.secretsmanager.Secret(
            f"{self._name}-api-keys",
            description="Inbound API keys of the llm-router (comma-separated).",
            recovery_window_in_days=7,
            tags=dict(self._args.tags),
            opts=child,
        )
        # Keys from config win; otherwise the stack's one generated key.
        value = pulumi.Output.all(self._args.api_keys, generated.result).apply(
            lambda values: values[0] or values[1]
        )
        aws.secretsmanager.SecretVersion(
            f"{self._name}-api-keys",
            secret_id=secret.id,
            secret_string=pulumi.Output.secret(value),
            opts=child,
        )
        return secret

    def _build_environment(self) -> dict[str, pulumi.Input[str]]:
        targets = pulumi.Output.json_dumps(self.profiles.profile_arns)
        return {
            "LLM_ROUTER_POLICY": self._args.policy.text,
            "LLM_ROUTER_TIER_TARGETS": targets,
            "LLM_ROUTER_EMF_ENABLED": "true",
            "LLM_ROUTER_EMF_NAMESPACE": self._args.emf_namespace,
            "LLM_ROUTER_PORT": str(ROUTER_PORT),
            "LLM_ROUTER_AWS_REGION": self._args.region,
        }
