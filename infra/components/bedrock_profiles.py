"""One tagged application inference profile per Bedrock tier, and the IAM to use them.

The router invokes each tier through its own profile, so Bedrock's usage and
the bill can be split by the profile's `Tier` tag. The invoke policy allows
the profiles themselves and reaches the models behind them only through those
profiles (condition `bedrock:InferenceProfileArn`), never directly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.router_policy import BedrockTier

INVOKE_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")


@dataclass(frozen=True)
class BedrockProfilesArgs:
    """The Bedrock tiers of the policy and the kit's tags."""

    tiers: Sequence[BedrockTier]
    tags: Mapping[str, str]


class BedrockProfiles(pulumi.ComponentResource):
    """Application inference profiles per tier plus a least-privilege invoke policy."""

    profile_arns: dict[str, pulumi.Output[str]]
    invoke_policy: pulumi.Output[str] | None

    def __init__(
        self,
        name: str,
        args: BedrockProfilesArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:BedrockProfiles", name, None, opts)
        self._name = name
        self._args = args
        invoke_opts = pulumi.InvokeOutputOptions(parent=self)
        self._account = aws.get_caller_identity_output(opts=invoke_opts).account_id
        self._partition = aws.get_partition_output(opts=invoke_opts).partition

        self.profile_arns = {
            tier.tier: self._declare_profile(tier).arn for tier in args.tiers
        }
        self.invoke_policy = self._build_invoke_policy() if args.tiers else None

        self.register_outputs({"profileArns": self.profile_arns})

    def _declare_profile(self, tier: BedrockTier) -> aws.bedrock.InferenceProfile:
        source = pulumi.Output.all(self._partition, self._account).apply(
            lambda values: _source_arn(tier, partition=values[0], account=values[1])
        )
        return aws.bedrock.InferenceProfile(
            f"{self._name}-{tier.tier}",
            name=f"{self._name}-{tier.tier}",
            description=f"llm-router tier {tier.tier} ({tier.model})",
            region=tier.region,
            model_source={"copy_from": source},
            tags={**self._args.tags, "Tier": tier.tier},
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _build_invoke_policy(self) -> pulumi.Output[str]:
        tiers = list(self._args.tiers)
        arns = [self.profile_arns[t.tier] for t in tiers]
        return pulumi.Output.all(self._partition, self._account, *arns).apply(
            lambda values: json.dumps(
                invoke_policy_document(
                    tiers,
                    profile_arns=list(values[2:]),
                    partition=values[0],
                    account=values[1],
                ),
                sort_keys=True,
            )
        )


def invoke_policy_document(
    tiers: Sequence[BedrockTier],
    *,
    profile_arns: Sequence[str],
    partition: str,
    account: str,
) -> dict[str, Any]:
    """The IAM document: invoke the tier profiles, and models only through them."""
    through_profiles = {
        "StringEquals": {"bedrock:InferenceProfileArn": sorted(profile_arns)}
    }
    statements: list[dict[str, Any]] = [
        {
            "Sid": "InvokeTierProfiles",
            "Effect": "Allow",
            "Action": list(INVOKE_ACTIONS),
            "Resource": sorted(profile_arns),
        }
    ]
    system_profiles = sorted(
        {
            _source_arn(t, partition=partition, account=account)
            for t in tiers
            if t.cross_region
        }
    )
    if system_profiles:
        statements.append(
            {
                "Sid": "RouteThroughSystemProfiles",
                "Effect": "Allow",
                "Action": list(INVOKE_ACTIONS),
                "Resource": system_profiles,
                "Condition": through_profiles,
            }
        )
    statements.append(
        {
            "Sid": "ReachModelsThroughTierProfiles",
            "Effect": "Allow",
            "Action": list(INVOKE_ACTIONS),
            "Resource": sorted({_model_arn(t, partition=partition) for t in tiers}),
            "Condition": through_profiles,
        }
    )
    return {"Version": "2012-10-17", "Statement": statements}


def _source_arn(tier: BedrockTier, *, partition: str, account: str) -> str:
    """What the tier's application profile copies from."""
    if tier.cross_region:
        return (
            f"arn:{partition}:bedrock:{tier.region}:{account}:"
            f"inference-profile/{tier.model}"
        )
    return _model_arn(tier, partition=partition)


def _model_arn(tier: BedrockTier, *, partition: str) -> str:
    # A cross-region profile may serve the request from any region of its
    # geography, so the model ARN cannot name one region; the condition above
    # still limits it to calls made through this stack's profiles.
    region = "*" if tier.cross_region else tier.region
    return f"arn:{partition}:bedrock:{region}::foundation-model/{tier.foundation_model}"
