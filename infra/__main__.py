"""Pulumi entry point (`main: infra/`): everything happens in `infra.program`."""

import sys
from pathlib import Path

# Pulumi runs this file as a script from infra/; the project root must be on
# the path for `import infra` to resolve.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.program import run

run()
