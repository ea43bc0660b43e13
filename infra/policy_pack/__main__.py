"""The CrossGuard pack: each rule of `rules.py` as a mandatory resource policy."""

import sys
from pathlib import Path
from typing import Any

# Pulumi runs this file from infra/policy_pack/; the project root must be on
# the path for `import infra` to resolve.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from infra.policy_pack.gpu_rules import GPU_RULES
from infra.policy_pack.rules import RULES, Rule


def _adapt(rule: Rule) -> Any:
    """Wrap a pure rule as a CrossGuard validate callback."""

    def validate(args: ResourceValidationArgs, report_violation: Any) -> None:
        for message in rule(args.resource_type, args.props):
            report_violation(message)

    return validate


PolicyPack(
    name="llm-router-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        ResourceValidationPolicy(name=name, description=text, validate=_adapt(rule))
        for name, (rule, text) in {**RULES, **GPU_RULES}.items()
    ],
)
