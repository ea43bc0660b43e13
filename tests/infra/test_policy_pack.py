"""The CrossGuard rules as pure functions, on bad resources and on both stacks."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import Any

import pulumi_policy
import pytest

from infra.mocking import ProgramRun, is_taggable
from infra.policy_pack import rules
from infra.policy_pack.gpu_rules import GPU_RULES

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
PROFILE = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc"
MODEL = "arn:aws:bedrock:*::foundation-model/anthropic.claude-x"
KIT_TAGS = {"Project": "p", "Stack": "s", "ManagedBy": "pulumi", "CostCenter": "c"}


def iam(*statements: dict[str, Any]) -> dict[str, Any]:
    """Role-policy props holding these statements."""
    return {"policy": json.dumps({"Version": "2012-10-17", "Statement": statements})}


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    """One Allow statement."""
    return {
        "Sid": "S",
        "Effect": "Allow",
        "Action": action,
        "Resource": resource,
        **extra,
    }


THROUGH_PROFILE = {"StringEquals": {"bedrock:InferenceProfileArn": [PROFILE]}}


@pytest.mark.parametrize(
    "props",
    [
        iam(allow("bedrock:*", PROFILE)),
        iam(allow("bedrock:InvokeModel*", PROFILE)),
        iam(allow("*", "*")),
        iam(allow("bedrock:InvokeModel", "*")),
        iam(allow(["bedrock:InvokeModel"], [PROFILE, "arn:aws:bedrock:*:*:*"])),
        iam(allow("bedrock:InvokeModel", MODEL)),
        iam(
            allow(
                "bedrock:InvokeModel", "arn:aws:bedrock:us-east-1::foundation-model/*"
            )
        ),
    ],
)
def test_wildcard_or_direct_bedrock_invoke_is_a_violation(
    props: dict[str, Any],
) -> None:
    assert rules.check_bedrock_invoke_scope(ROLE_POLICY, props)


@pytest.mark.parametrize(
    "props",
    [
        iam(
            allow(
                ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
                PROFILE,
            )
        ),
        iam(allow("bedrock:InvokeModel", [MODEL], Condition=THROUGH_PROFILE)),
        iam(allow("dynamodb:GetItem", "*")),
        iam({"Effect": "Deny", "Action": "bedrock:*", "Resource": "*"}),
    ],
)
def test_named_profiles_and_conditioned_models_pass(props: dict[str, Any]) -> None:
    assert rules.check_bedrock_invoke_scope(ROLE_POLICY, props) == []


def test_wildcard_actions_are_violations_in_any_iam_policy() -> None:
    assert rules.check_no_wildcard_actions(ROLE_POLICY, iam(allow("s3:*", "*")))
    assert rules.check_no_wildcard_actions(
        "aws:iam/policy:Policy", iam(allow("*", "*"))
    )
    assert (
        rules.check_no_wildcard_actions(ROLE_POLICY, iam(allow("s3:GetObject", "*")))
        == []
    )
    assert (
        rules.check_no_wildcard_actions("aws:s3/bucket:Bucket", iam(allow("*", "*")))
        == []
    )


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        ("aws:dynamodb/table:Table", {}),
        ("aws:dynamodb/table:Table", {"serverSideEncryption": {"enabled": False}}),
        (
            "aws:elasticache/replicationGroup:ReplicationGroup",
            {"atRestEncryptionEnabled": True},
        ),
        ("aws:sns/topic:Topic", {}),
        ("aws:lb/listener:Listener", {"protocol": "HTTP", "port": 80}),
        (
            "aws:lb/listener:Listener",
            {"protocol": "HTTP", "defaultActions": [{"type": "forward"}]},
        ),
    ],
)
def test_unencrypted_stores_and_plain_listeners_are_violations(
    resource_type: str, props: dict[str, Any]
) -> None:
    assert rules.check_encryption(resource_type, props)


def test_an_http_listener_that_redirects_to_https_passes() -> None:
    redirect = {"type": "redirect", "redirect": {"protocol": "HTTPS"}}
    props = {"protocol": "HTTP", "port": 80, "defaultActions": [redirect]}

    assert rules.check_encryption("aws:lb/listener:Listener", props) == []


def test_missing_kit_tags_are_named() -> None:
    found = rules.check_required_tags(
        "aws:sns/topic:Topic", {"tags": {"Project": "p", "Stack": "s"}}
    )

    assert found == [
        "aws:sns/topic:Topic lacks tags ['ManagedBy', 'CostCenter']; "
        "the kit tags every resource."
    ]
    provider_defaults = {"tagsAll": {"ManagedBy": "pulumi", "CostCenter": "c"}}
    props = {"tags": {"Project": "p", "Stack": "s"}, **provider_defaults}
    assert rules.check_required_tags("aws:sns/topic:Topic", props) == []
    assert rules.check_required_tags("aws:iam/rolePolicy:RolePolicy", {}) == []


def test_log_groups_need_retention_and_tasks_no_public_ip() -> None:
    group = "aws:cloudwatch/logGroup:LogGroup"
    service = "aws:ecs/service:Service"

    assert rules.check_log_retention(group, {"name": "g"})
    assert rules.check_log_retention(group, {"retentionInDays": 0})
    assert rules.check_log_retention(group, {"retentionInDays": 30}) == []
    public = {"networkConfiguration": {"assignPublicIp": True}}
    assert rules.check_no_public_task_ip(service, public)
    assert rules.check_no_public_task_ip(service, {"networkConfiguration": {}}) == []


def test_both_stacks_pass_every_rule(stack_runs: list[ProgramRun]) -> None:
    for run in stack_runs:
        for resource in run.resources:
            assert rules.check_all(resource.type, resource.inputs) == {}, resource.name


def test_the_taggable_list_covers_every_taggable_type_the_stacks_declare(
    stack_runs: list[ProgramRun],
) -> None:
    declared = {r.type for run in stack_runs for r in run.resources}

    missing = {t for t in declared if is_taggable(t)} - rules.TAGGABLE_TYPES
    assert missing == set(), "add these types to rules.TAGGABLE_TYPES"


def test_the_pack_registers_every_rule_as_mandatory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[Any] = []
    monkeypatch.setattr(
        pulumi_policy, "PolicyPack", lambda **kwargs: created.append(kwargs)
    )
    monkeypatch.setattr(sys, "path", list(sys.path))
    pack = Path(__file__).resolve().parents[2] / "infra/policy_pack/__main__.py"

    runpy.run_path(str(pack), run_name="__main__")

    assert len(created) == 1
    assert created[0]["enforcement_level"] == pulumi_policy.EnforcementLevel.MANDATORY
    names = [policy.name for policy in created[0]["policies"]]
    assert names == [*rules.RULES, *GPU_RULES]
    violations: list[str] = []
    bedrock = created[0]["policies"][names.index("no-wildcard-bedrock-invoke")]
    args = type(
        "Args", (), {"resource_type": ROLE_POLICY, "props": iam(allow("*", "*"))}
    )
    bedrock.validate(args, violations.append)
    assert violations, "the adapter must pass violations to CrossGuard"
