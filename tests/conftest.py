"""Fixtures shared by every test package."""

from __future__ import annotations

import sys
from pathlib import Path

# `tests/helpers.py` is imported as `helpers` from any test module.
sys.path.insert(0, str(Path(__file__).parent))
