"""The program as a whole: policy validation first, dispatch, outputs, mocks."""

from __future__ import annotations

import sys
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pytest
from infra_support import BAD_POLICY, FIXTURE_POLICY

from infra.mocking import MockedResource, ProgramRun, run_program
from infra.program import select_builder
from infra.router_policy import BedrockTier, parse_router_policy
from llm_router.errors import ConfigError
from llm_router.policy import parse_policy

ROOT = Path(__file__).resolve().parents[2]


def test_a_bad_policy_fails_before_any_resource_with_the_routers_message() -> None:
    text = (ROOT / BAD_POLICY).read_text()
    with pytest.raises(ConfigError) as expected:
        parse_policy(text, source=BAD_POLICY)

    for stack in ("small", "medium"):
        declared: list[MockedResource] = []
        with pytest.raises(pulumi.RunError) as failed:
            run_program(stack, {"policyFile": BAD_POLICY}, record=declared)
        assert str(failed.value) == str(expected.value)
        assert "Unknown provider 'bedrok' in tiers.small.provider" in str(failed.value)
        assert declared == [], "a failed validation must leave nothing declared"


def test_a_missing_policy_file_names_the_config_key() -> None:
    with pytest.raises(pulumi.RunError, match=r"policy file 'nope.yaml' \(policyFile"):
        run_program("small", {"policyFile": "nope.yaml"})


def test_invalid_stack_config_fails_the_run_without_a_traceback_type() -> None:
    with pytest.raises(pulumi.RunError, match="certificateArn = ''"):
        run_program("medium", {"certificateArn": ""})


def test_a_stack_package_that_is_absent_gets_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A None entry makes the import fail as if infra/large/ did not exist.
    monkeypatch.setitem(sys.modules, "infra.large", None)

    with pytest.raises(ValueError, match=r"'large' stack is not part of this checkout"):
        select_builder("large")


def test_small_and_medium_builders_are_found() -> None:
    assert select_builder("small").__module__ == "infra.small"
    assert select_builder("medium").__module__ == "infra.medium"


def test_an_unknown_invoke_fails_loudly_under_the_mocks() -> None:
    def program() -> dict[str, pulumi.Input[object]]:
        return {"vpc": aws.ec2.get_vpc_output(default=True).id}

    with pytest.raises(Exception, match="do not answer 'aws:ec2/getVpc:getVpc'"):
        run_program("small", program=program)


def test_both_stacks_export_their_entry_points(
    small_run: ProgramRun, medium_run: ProgramRun
) -> None:
    assert small_run.outputs["url"].startswith("https://")
    assert medium_run.outputs["url"].startswith("https://")
    for run in (small_run, medium_run):
        assert set(run.outputs["tierProfiles"]) == {"small", "medium", "large"}
        assert run.outputs["apiKeysSecretArn"].startswith("arn:aws:secretsmanager:")
        assert run.outputs["dashboardName"], run.stack


def test_cross_region_model_ids_are_told_from_foundation_models() -> None:
    single = BedrockTier(
        tier="small", model="amazon.nova-micro-v1:0", region="us-east-1"
    )
    geo = BedrockTier(
        tier="large", model="us.anthropic.claude-x-v1:0", region="us-west-2"
    )
    world = BedrockTier(
        tier="large", model="global.anthropic.claude-y", region="eu-west-1"
    )

    assert not single.cross_region
    assert single.foundation_model == "amazon.nova-micro-v1:0"
    assert geo.cross_region
    assert geo.foundation_model == "anthropic.claude-x-v1:0"
    assert world.foundation_model == "anthropic.claude-y"


def test_the_tier_target_is_what_the_profile_copies() -> None:
    policy = parse_router_policy(
        (ROOT / "services/router/config/bedrock.yaml").read_text(), source="bedrock"
    )

    for tier in policy.bedrock_tiers:
        assert tier.model == policy.policy.tiers[tier.tier].invoke_target
        assert tier.cross_region, tier


def test_a_tier_that_already_invokes_an_arn_is_refused() -> None:
    text = (
        (ROOT / FIXTURE_POLICY)
        .read_text()
        .replace(
            "amazon.nova-micro-v1:0",
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/x",
        )
    )

    with pytest.raises(ConfigError, match=r"tiers.small invokes an ARN"):
        parse_router_policy(text, source="edited")


def test_aws_region_in_the_policy_means_the_stacks_region_not_the_shell(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The shipped policy says `region: ${AWS_REGION:-us-east-1}`; at run time
    # AWS_REGION is the region the router runs in, so the stack must read it
    # the same way whatever the deployer's shell holds.
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    run = run_program("small", {"aws:region": "eu-west-1"})

    profiles = run.of_type("aws:bedrock/inferenceProfile:InferenceProfile")
    assert profiles
    assert {p.inputs["region"] for p in profiles} == {"eu-west-1"}
