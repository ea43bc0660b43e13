"""Profile the router under load with py-spy and print where its time goes.

    uv run --with py-spy python -m bench.profile [--stream] [--seconds 10]

It starts the bench upstream and `llm-router serve`, drives the router with
`wrk` at concurrency 32, samples the router process with py-spy, and prints
the functions with the most samples: on their own (self) and with what they
call (inclusive). py-spy is not a project dependency; `uv run --with` brings
it for this command only.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import loadgen, processes

_FRAME = re.compile(r"(.*) \((.*?):\d+\)")


def summarise(raw: Path, top: int = 30) -> str:
    """Self and inclusive sample shares per function from py-spy's raw output."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_name(frame) for frame in stack.split(";")]
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if not total:
        return "py-spy recorded no samples."
    lines = [f"{total} samples", "", "self:"]
    lines += [f"{100 * n / total:5.1f}%  {k}" for k, n in own.most_common(top)]
    lines += ["", "inclusive (router code and its direct costs):"]
    lines += [
        f"{100 * n / total:5.1f}%  {k}"
        for k, n in inclusive.most_common(top * 8)
        if "llm_router" in k or "logging" in k or "aiohttp/client" in k
    ][:top]
    return "\n".join(lines)


def _name(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    function, file = match.groups()
    file = re.sub(r".*/site-packages/", "", file)
    file = re.sub(r".*/services/router/", "", file)
    return f"{function} [{file}]"


def main(argv: list[str] | None = None) -> int:
    """Run the profile and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", action="store_true", help="streaming traffic")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    if shutil.which("py-spy") is None or not loadgen.wrk_available():
        print("Needs py-spy and wrk: uv run --with py-spy ...; apt-get install wrk.")
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    upstream = processes.start_upstream(0.0, workdir)
    with processes.running(upstream):
        router = processes.start_router(upstream.url, workdir)
        with processes.running(router):
            url = router.url + "/v1/chat/completions"
            script = loadgen.write_wrk_script(workdir / "chat.lua", stream=args.stream)
            loadgen.run_wrk(url, script, concurrency=args.concurrency, duration_s=2)
            load = subprocess.Popen(
                [
                    "wrk",
                    "-t1",
                    f"-c{args.concurrency}",
                    f"-d{args.seconds + 3}s",
                    "-s",
                    str(script),
                    url,
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(1)
            raw = workdir / "profile.txt"
            subprocess.run(
                [
                    "py-spy",
                    "record",
                    "--pid",
                    str(router.pid),
                    "--duration",
                    str(args.seconds),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--output",
                    str(raw),
                ],
                check=True,
                capture_output=True,
            )
            output, _ = load.communicate()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    print(
        f"router under wrk -c{args.concurrency}: {rate.group(1) if rate else '?'} req/s"
    )
    print(summarise(raw))
    print(f"\nraw profile: {raw}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
