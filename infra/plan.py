"""Offline plan: what a stack would declare, with no cloud account and no CLI.

    uv run python -m infra.plan small
    uv run python -m infra.plan medium --set certificateArn=arn:aws:acm:...
    make plan STACK=medium

Runs the real program under Pulumi's mocks with the stack's config (the
`Pulumi.yaml` defaults, then `stacks/Pulumi.<stack>.yaml`, then `--set`), and
prints every resource by type, the alarms with their thresholds, the budgets,
the router's environment, and what the policy pack would say. Exits non-zero
when the config is invalid or a guardrail is violated.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

import pulumi

from infra.mocking import MockedResource, ProgramRun, run_program
from infra.policy_pack.rules import check_all

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
BUDGET = "aws:budgets/budget:Budget"
RUNTIMES = (
    "aws:lambda/function:Function",
    "aws:ecs/taskDefinition:TaskDefinition",
    "kubernetes:apps/v1:Deployment",
)
# Variables shown by size only: their values are long or secret-adjacent.
SHOWN_BY_SIZE = ("LLM_ROUTER_POLICY",)
SECRET_OUTPUTS = ("apiKey", "grafanaAdminPassword", "kubeconfig")


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Parse arguments, run the plan, print it; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m infra.plan", description=__doc__)
    parser.add_argument("stack", help="stack name, e.g. small or medium")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (JSON values allowed), e.g. minTasks=3",
    )
    args = parser.parse_args(argv)

    try:
        overrides = dict(_parse_override(item) for item in args.set)
        run = run_program(args.stack, overrides)
    except (pulumi.RunError, ValueError) as exc:
        print(f"error: {exc}", file=out)
        return 2
    violations = render_plan(run, out)
    return 1 if violations else 0


def render_plan(run: ProgramRun, out: TextIO) -> int:
    """Print the plan of one run; returns the number of guardrail violations."""
    custom = [r for r in run.resources if r.custom]
    print(
        f"Offline plan for stack {run.stack!r} (Pulumi mocks, no cloud calls)", file=out
    )
    print(
        f"\nResources: {len(custom)} (+ {len(run.resources) - len(custom)} components)",
        file=out,
    )
    for type_token, count in sorted(Counter(r.type for r in run.resources).items()):
        print(f"  {count:3d}  {type_token}", file=out)

    _print_alarms(run.of_type(ALARM), out)
    _print_budgets(run.of_type(BUDGET), out)
    _print_environment(run, out)

    violations = 0
    print("\nPolicy pack (infra/policy_pack):", file=out)
    for resource in run.resources:
        for rule, messages in check_all(resource.type, resource.inputs).items():
            for message in messages:
                violations += 1
                print(f"  [{rule}] {resource.name}: {message}", file=out)
    if not violations:
        print("  no violations", file=out)

    print("\nOutputs:", file=out)
    for key in sorted(run.outputs):
        value = "[secret]" if key in SECRET_OUTPUTS else _shorten(run.outputs[key])
        print(f"  {key}: {value}", file=out)
    return violations


def _print_alarms(alarms: list[MockedResource], out: TextIO) -> None:
    print(f"\nAlarms: {len(alarms)}", file=out)
    for alarm in alarms:
        inputs = alarm.inputs
        queries = inputs.get("metricQueries", [])
        expression = next((q["expression"] for q in queries if "expression" in q), "")
        metrics = sorted(
            {
                f"{q['metric']['metricName']}/{int(q['metric']['period'])}s"
                for q in queries
                if "metric" in q
            }
        )
        operator = ">=" if "OrEqual" in inputs["comparisonOperator"] else ">"
        threshold = _format_number(inputs["threshold"])
        print(
            f"  {alarm.name}: {expression} {operator} {threshold}"
            f"  [{', '.join(metrics)}]",
            file=out,
        )


def _print_budgets(budgets: list[MockedResource], out: TextIO) -> None:
    print(f"\nBudgets: {len(budgets)}", file=out)
    for budget in budgets:
        tags = budget.inputs.get("filterExpression", {}).get("ands", [])
        scope = ", ".join(f"{t['tags']['key']}={t['tags']['values'][0]}" for t in tags)
        print(
            f"  {budget.name}: {budget.inputs['limitAmount']} USD per month ({scope})",
            file=out,
        )


def _print_environment(run: ProgramRun, out: TextIO) -> None:
    for resource in run.resources:
        if resource.type not in RUNTIMES:
            continue
        environment, secrets = _runtime_environment(resource)
        if "LLM_ROUTER_POLICY" not in environment:
            continue  # another Deployment (Triton), not the router
        print(f"\nRouter environment ({resource.name}):", file=out)
        for key in sorted(environment):
            value = environment[key]
            shown = f"<{len(value.encode())} bytes>" if key in SHOWN_BY_SIZE else value
            print(f"  {key}={_shorten(shown)}", file=out)
        for key in sorted(secrets):
            print(f"  {key} <- secret {secrets[key]}", file=out)


def _runtime_environment(
    resource: MockedResource,
) -> tuple[dict[str, str], dict[str, str]]:
    if resource.type == RUNTIMES[0]:
        return dict(resource.inputs["environment"]["variables"]), {}
    if resource.type == RUNTIMES[2]:
        env = resource.inputs["spec"]["template"]["spec"]["containers"][0]["env"]
        plain = {item["name"]: item["value"] for item in env if "value" in item}
        refs = {
            item["name"]: "{name}/{key}".format(**item["valueFrom"]["secretKeyRef"])
            for item in env
            if "valueFrom" in item
        }
        return plain, refs
    container = json.loads(resource.inputs["containerDefinitions"])[0]
    environment = {item["name"]: item["value"] for item in container["environment"]}
    secrets = {item["name"]: item["valueFrom"] for item in container["secrets"]}
    return environment, secrets


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        msg = f"--set expects KEY=VALUE, got {item!r}."
        raise ValueError(msg)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _format_number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _shorten(value: Any, limit: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


if __name__ == "__main__":
    sys.exit(main())
