"""Start, probe and stop the processes under test: upstream, router, LiteLLM.

Each runs as its own OS process on a loopback port, so the load generator,
the proxy and the upstream never share an interpreter. Resident memory is read
from `/proc/<pid>/status` over the process and its children.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LITELLM_VERSION = "1.108.7"
DEFAULT_LITELLM_VENV = ROOT / "bench" / ".venv-litellm"
API_KEY = "sk-bench-not-a-secret"


@dataclass
class Server:
    """A running server process and where it listens."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the harness dies.

    A harness killed by a timeout must not leave proxies running on a shared
    machine.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    """An ephemeral loopback port the kernel just handed out."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_upstream(delay_ms: float, workdir: Path) -> Server:
    """The fast OpenAI-compatible upstream with a fixed delay before answering."""
    log = workdir / f"upstream-{delay_ms:g}ms.log"
    with log.open("wb") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.upstream", "--delay-ms", str(delay_ms)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
            preexec_fn=_die_with_parent,
        )
    assert process.stdout is not None
    line = process.stdout.readline().decode().strip()
    if not line.startswith("READY "):
        process.kill()
        msg = f"The bench upstream did not start: {line!r}; see {log}."
        raise RuntimeError(msg)
    url = f"http://127.0.0.1:{line.split()[1]}"
    return Server(f"upstream-{delay_ms:g}ms", process, url, log)


def router_policy(upstream_url: str) -> str:
    """A three-tier policy whose tiers all call the bench upstream."""
    tiers = "".join(
        f"  {name}:\n    provider: upstream\n    model: up-{name}\n"
        f"    input_usd_per_million: {price}\n"
        f"    output_usd_per_million: {price * 4}\n"
        for name, price in (("small", 0.1), ("medium", 1.0), ("large", 3.0))
    )
    return (
        "version: 1\nname: bench\n"
        "providers:\n  upstream:\n    type: openai\n"
        f"    base_url: {upstream_url}/v1\n"
        f"tiers:\n{tiers}"
    )


def start_router(
    upstream_url: str,
    workdir: Path,
    *,
    name: str = "router",
    module: str = "llm_router",
    **env: str,
) -> Server:
    """`llm-router serve` on a free port, its access log going to a file.

    It runs as `python -m llm_router` from this interpreter rather than through
    `uv run`, so the process we measure is the router itself, not uv. Another
    `module` with the same `serve` command line (`bench.gc_probe`) wraps it.
    """
    policy = workdir / f"{name}-policy.yaml"
    policy.write_text(router_policy(upstream_url), encoding="utf-8")
    port = free_port()
    log = workdir / f"{name}.log"
    command = [
        sys.executable,
        "-m",
        module,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--config",
        str(policy),
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    url = f"http://127.0.0.1:{port}"
    server = Server(name, process, url, log)
    wait_ready(server, "/healthz", timeout_s=60)
    return server


def litellm_config(upstream_url: str) -> str:
    """LiteLLM proxy config equivalent to the router's: same upstream, no extras."""
    return (
        "model_list:\n"
        "  - model_name: auto\n"
        "    litellm_params:\n"
        "      model: openai/up-small\n"
        f"      api_base: {upstream_url}/v1\n"
        f"      api_key: {API_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  callbacks: []\n"
        "  success_callback: []\n"
        "  failure_callback: []\n"
        "  drop_params: true\n"
        "general_settings:\n"
        # The router has no inbound auth here either; LiteLLM refuses to start
        # keyless unless told this is deliberate.
        "  dangerously_permit_weak_or_unset_master_key: true\n"
    )


def litellm_ready(venv: Path) -> bool:
    """Whether the LiteLLM virtualenv exists with its proxy entry point."""
    return (venv / "bin" / "litellm").exists()


def ensure_litellm(venv: Path) -> None:
    """Create the LiteLLM virtualenv (outside the project's lockfile) if absent."""
    if litellm_ready(venv):
        return
    subprocess.run(["uv", "venv", "--quiet", str(venv)], check=True)
    subprocess.run(
        [
            "uv",
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            f"litellm[proxy]=={LITELLM_VERSION}",
        ],
        check=True,
    )


def start_litellm(upstream_url: str, workdir: Path, venv: Path) -> Server:
    """LiteLLM's proxy, one worker, no database, no callbacks, local cost map."""
    config = workdir / "litellm.yaml"
    config.write_text(litellm_config(upstream_url), encoding="utf-8")
    port = free_port()
    log = workdir / "litellm.log"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "LITELLM_", "VIRTUAL_ENV", "UV_"))
    }
    env.update(
        {
            # Offline: the bundled model cost map, never the remote one.
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOG": "ERROR",
            "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}",
        }
    )
    command = [
        str(venv / "bin" / "litellm"),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
        "--telemetry",
        "False",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    server = Server("litellm", process, f"http://127.0.0.1:{port}", log)
    wait_ready(server, "/health/liveliness", timeout_s=120)
    return server


def wait_ready(server: Server, path: str, *, timeout_s: float) -> None:
    """Poll `path` until it answers 200; fail with the log's tail otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            # The URL is always http://127.0.0.1:<port> built above.
            probe = server.url + path
            with urllib.request.urlopen(probe, timeout=2) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    tail = server.log.read_text(errors="replace")[-1500:] if server.log.exists() else ""
    stop(server)
    msg = f"{server.name} did not become ready at {server.url}{path}:\n{tail}"
    raise RuntimeError(msg)


def rss_mb(pid: int) -> float:
    """Resident memory (VmRSS) of a process and all its descendants, in MB."""
    total_kb = 0
    for each in _tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its descendants, in seconds."""
    ticks = 0
    for each in _tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            # Fields 14 and 15 of stat (utime, stime), counted after the name.
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def loaded_libraries(pid: int, names: tuple[str, ...]) -> dict[str, bool]:
    """Which of `names` appear among the shared objects mapped by `pid`."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return dict.fromkeys(names, False)
    return {name: name in maps for name in names}


def stop(server: Server) -> None:
    """SIGTERM the server (SIGKILL after 10 s) and reap it."""
    if server.process.poll() is not None:
        return
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=5)
    if server.process.stdout is not None:
        server.process.stdout.close()


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    """Stop the server when the block ends, whatever happens in it."""
    try:
        yield server
    finally:
        stop(server)
