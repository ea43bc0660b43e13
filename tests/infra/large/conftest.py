"""Fixtures for the large stack: one mocked run, shared by every test module."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# `large_support` lives next to this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from infra.mocking import ProgramRun, run_program


@pytest.fixture(scope="session")
def large_run() -> ProgramRun:
    """The large stack as configured in stacks/Pulumi.large.yaml."""
    return run_program("large")
