"""Cold start of the router: what a new Lambda sandbox pays before serving.

Each run starts a fresh interpreter that imports the app, loads the policy
and the classifier (through `RouterService.from_settings`, as the server
does) and builds the FastAPI app. The child times its own phases; the parent
times the whole process, interpreter start-up included. Reported: the median
of N runs, wall clock and CPU time. Start-up reads cached files and waits on
nothing, so on an idle core wall time equals CPU time; on a shared machine
wall time also counts waiting for a core. The budget is therefore judged on
CPU time, and both are printed together with the load average.

    uv run python bench/cold_start.py --runs 15
    uv run python bench/cold_start.py --classifier learned \
        --policy services/router/config/bedrock.yaml
    uv run python bench/cold_start.py --importtime    # the slowest imports, once

Settings come from the environment as in production (`LLM_ROUTER_*`), plus
the flags here. The budget is 1 s for import + policy + classifier.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson

BUDGET_MS = 1000.0

# Runs in the child. Times are taken before the first llm_router import.
_CHILD = """
import time
started, started_cpu = time.perf_counter(), time.process_time()
import llm_router.app
from llm_router.service import RouterService
from llm_router.settings import Settings
imported = time.perf_counter()
settings = Settings()
service = RouterService.from_settings(settings)
loaded, loaded_cpu = time.perf_counter(), time.process_time()
app = llm_router.app.create_app(settings, service)
built = time.perf_counter()
import orjson, sys
sys.stdout.write(orjson.dumps({
    "import_ms": (imported - started) * 1000,
    "load_ms": (loaded - imported) * 1000,
    "app_ms": (built - loaded) * 1000,
    "import_plus_load_cpu_ms": (loaded_cpu - started_cpu) * 1000,
    "classifier": service.router.classifier.name,
    "policy": service.policy.name,
}).decode())
"""


def run_once(env: dict[str, str]) -> dict[str, float | str]:
    """One fresh process; its phase times plus the process wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    wall_ms = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        msg = f"the child failed:\n{done.stderr}"
        raise SystemExit(msg)
    result: dict[str, float | str] = orjson.loads(done.stdout.splitlines()[-1])
    result["process_ms"] = wall_ms
    return result


def show_slowest_imports(env: dict[str, str], top: int = 15) -> None:
    """Print the imports with the largest cumulative time (`-X importtime`)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _CHILD],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if match:
            rows.append((int(match.group(2)), len(match.group(3)), match.group(4)))
    print(f"slowest imports (cumulative ms), top {top}:")
    for cumulative_us, depth, name in sorted(rows, reverse=True)[:top]:
        print(f"  {cumulative_us / 1000:8.1f}  {'.' * (depth // 2)}{name}")


def main() -> int:
    """Run the benchmark and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--classifier", help="rules, learned or triton")
    parser.add_argument("--policy", type=Path, help="policy YAML")
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()

    env = dict(os.environ)
    if args.classifier:
        env["LLM_ROUTER_CLASSIFIER"] = args.classifier
    if args.policy:
        env["LLM_ROUTER_POLICY_FILE"] = str(args.policy.resolve())
    if args.importtime:
        show_slowest_imports(env)
        return 0

    run_once(env)  # warm the page cache, as a reused Lambda host would be
    runs = [run_once(env) for _ in range(args.runs)]

    def median(key: str) -> float:
        return statistics.median(float(r[key]) for r in runs)

    startup = statistics.median(
        float(r["import_ms"]) + float(r["load_ms"]) for r in runs
    )
    startup_cpu = median("import_plus_load_cpu_ms")
    summary = {
        "runs": args.runs,
        "classifier": runs[0]["classifier"],
        "policy": runs[0]["policy"],
        "import_ms": round(median("import_ms"), 1),
        "load_policy_and_classifier_ms": round(median("load_ms"), 1),
        "import_plus_load_ms": round(startup, 1),
        "import_plus_load_cpu_ms": round(startup_cpu, 1),
        "build_app_ms": round(median("app_ms"), 1),
        "process_ms": round(median("process_ms"), 1),
        "budget_ms": BUDGET_MS,
        "within_budget": startup_cpu <= BUDGET_MS,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    return 0 if startup_cpu <= BUDGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
