"""Fixtures of the classifier tests (the Triton pieces live in `triton_helpers`)."""

from triton_helpers import triton

__all__ = ["triton"]
