"""Small builders for IAM documents, so every role reads the same way."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi


def assume_role_policy(service: str) -> str:
    """Trust policy letting one AWS service assume the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def statement(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]],
    condition: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One Allow statement; resources may be outputs."""
    found: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": list(resources),
    }
    if condition:
        found["Condition"] = dict(condition)
    return found


def sorted_statement(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]],
    condition: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One Allow statement with its actions sorted, so long policies diff stably."""
    return statement(sid, sorted(actions), resources, condition)


def policy_document(statements: Sequence[dict[str, Any]]) -> pulumi.Output[str]:
    """A JSON policy document, resolved once every ARN in it is known."""
    return pulumi.Output.json_dumps(
        {"Version": "2012-10-17", "Statement": list(statements)}
    )
