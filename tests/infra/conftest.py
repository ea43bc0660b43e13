"""Fixtures for the Pulumi program tests: each stack run once under mocks."""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# `infra` is a plain folder at the project root, not an installed package;
# `infra_support` holds what these test modules share.
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

from infra.mocking import ProgramRun, run_program  # noqa: E402

# pulumi_aws loads its submodules lazily (on first attribute access), and
# several warn at load time that one of their classes is deprecated (classes
# this kit does not use). Loading them here, once, with only those warnings
# silenced keeps `-W error` for everything else.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore",
        category=DeprecationWarning,
        module=r"pulumi_awsx?\.",
    )
    for _module in [
        *(
            f"pulumi_aws.{name}"
            for name in [
                "appautoscaling",
                "bedrock",
                "budgets",
                "cloudwatch",
                "costexplorer",
                "dynamodb",
                "ec2",
                "ecr",
                "ecs",
                "elasticache",
                "iam",
                "kms",
                "lambda_",
                "lb",
                "secretsmanager",
                "sns",
                "vpc",
            ]
        ),
        "pulumi_awsx.ec2",
    ]:
        getattr(importlib.import_module(_module), "__all__", None)


@pytest.fixture(scope="session")
def small_run() -> ProgramRun:
    """The small stack as configured in stacks/Pulumi.small.yaml."""
    return run_program("small")


@pytest.fixture(scope="session")
def medium_run() -> ProgramRun:
    """The medium stack as configured in stacks/Pulumi.medium.yaml."""
    return run_program("medium")


@pytest.fixture(scope="session")
def stack_runs(small_run: ProgramRun, medium_run: ProgramRun) -> list[ProgramRun]:
    """Both stacks, for properties every stack must have."""
    return [small_run, medium_run]
