"""Serve the repository's Triton model repository with PyTriton's bundled server.

`nvidia-pytriton` ships a CPU-capable `tritonserver` (2.51) and the Python
backend. This launcher runs that binary against `model_repository/` next to
this file, so the `config.pbtxt` and `model.py` that tests exercise are the
ones the large stack deploys. Tests and local development both use it:

    uv run python services/router/triton/serve_triton.py
    uv run python services/router/triton/serve_triton.py --grpc-port 8001

It binds loopback only. Stop it with Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO

logger = logging.getLogger(__name__)

MODEL_REPOSITORY = Path(__file__).resolve().parent / "model_repository"
MODEL_NAME = "task_classifier"
LOOPBACK = "127.0.0.1"
_START_ATTEMPTS = 3  # ports are chosen free, but another process may take one
_STUB_LINK_ERROR = "error while loading shared libraries"


class TritonStartError(RuntimeError):
    """The Triton server exited or did not become ready in time."""


@dataclass(frozen=True, slots=True)
class TritonEndpoints:
    """Where a running server listens; `host:port` strings as tritonclient takes."""

    http: str
    grpc: str
    metrics: str

    @property
    def metrics_url(self) -> str:
        """The Prometheus metrics URL."""
        return f"http://{self.metrics}/metrics"


class TritonServer:
    """One `tritonserver` process serving a model repository on loopback."""

    def __init__(
        self,
        model_repository: Path = MODEL_REPOSITORY,
        *,
        workspace: Path | None = None,
        http_port: int = 0,
        grpc_port: int = 0,
        metrics_port: int = 0,
        log_verbose: int = 0,
    ) -> None:
        self.model_repository = model_repository.resolve()
        self._owned_workspace: tempfile.TemporaryDirectory[str] | None = None
        if workspace is None:
            self._owned_workspace = tempfile.TemporaryDirectory(prefix="triton-")
            workspace = Path(self._owned_workspace.name)
        self.workspace = workspace
        self._ports = (http_port, grpc_port, metrics_port)
        self.log_verbose = log_verbose
        self.log_path = workspace / "tritonserver.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self.endpoints: TritonEndpoints | None = None

    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout_s: float = 90.0) -> TritonEndpoints:
        """Start the server and wait until the model is ready."""
        self.workspace.mkdir(parents=True, exist_ok=True)
        backends = prepare_backends(self.workspace / "backends")
        last_error: TritonStartError | None = None
        for _ in range(_START_ATTEMPTS):
            endpoints = self._choose_endpoints()
            self._launch(backends, endpoints)
            try:
                wait_ready(endpoints, self._process, timeout_s, self.log_path)
            except TritonStartError as exc:
                self.stop()
                last_error = exc
                if "address already in use" not in self.logs().lower():
                    break
                continue
            self.endpoints = endpoints
            return endpoints
        assert last_error is not None
        raise last_error

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop the server with SIGTERM (SIGKILL if it does not exit in time)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("tritonserver ignored SIGTERM; killing it")
                process.kill()
                process.wait()
        self._process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def close(self) -> None:
        """Stop the server and remove a workspace this object created."""
        self.stop()
        if self._owned_workspace is not None:
            self._owned_workspace.cleanup()
            self._owned_workspace = None

    def logs(self) -> str:
        """The server's output so far."""
        return _read(self.log_path)

    def _choose_endpoints(self) -> TritonEndpoints:
        http, grpc, metrics = (port or free_port() for port in self._ports)
        return TritonEndpoints(
            http=f"{LOOPBACK}:{http}",
            grpc=f"{LOOPBACK}:{grpc}",
            metrics=f"{LOOPBACK}:{metrics}",
        )

    def _launch(self, backends: Path, endpoints: TritonEndpoints) -> None:
        command = build_command(
            self.model_repository, backends, endpoints, self.log_verbose
        )
        self._log_file = self.log_path.open("wb")
        self._process = subprocess.Popen(
            command,
            env=build_environment(),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workspace,
        )


def pytriton_root() -> Path:
    """The folder of PyTriton's bundled Triton distribution."""
    import pytriton

    return Path(pytriton.__file__).resolve().parent / "tritonserver"


def prepare_backends(target: Path) -> Path:
    """A backend directory whose Python backend stub matches this interpreter.

    PyTriton ships one stub per Python version; Triton looks for the stub
    next to `libtriton_python.so`, so the matching one is copied there.
    """
    source = pytriton_root()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = source / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.exists():
        msg = (
            f"nvidia-pytriton has no Python backend stub for Python {version}. "
            "Use a Python version it ships a stub for (3.8 to 3.13)."
        )
        raise TritonStartError(msg)

    python_backend = target / "python"
    if not (python_backend / "triton_python_backend_stub").exists():
        shutil.copytree(source / "backends" / "python", python_backend)
        shutil.copy2(stub, python_backend / "triton_python_backend_stub")
    return target


def build_command(
    model_repository: Path,
    backends: Path,
    endpoints: TritonEndpoints,
    log_verbose: int = 0,
) -> list[str]:
    """The `tritonserver` command line for a loopback-only CPU server."""
    binary = pytriton_root() / "bin" / "tritonserver"
    http_port = endpoints.http.rsplit(":", 1)[1]
    grpc_port = endpoints.grpc.rsplit(":", 1)[1]
    metrics_port = endpoints.metrics.rsplit(":", 1)[1]
    # Every server gets its own shared-memory prefix: concurrent servers on one
    # machine would otherwise share the Python backend's /dev/shm regions.
    shm_prefix = f"llmrouter{os.getpid()}-{secrets.token_hex(4)}-"
    return [
        str(binary),
        f"--model-repository={model_repository}",
        f"--backend-directory={backends}",
        f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
        f"--cache-directory={pytriton_root() / 'caches'}",
        f"--http-address={LOOPBACK}",
        f"--http-port={http_port}",
        f"--grpc-address={LOOPBACK}",
        f"--grpc-port={grpc_port}",
        f"--metrics-address={LOOPBACK}",
        f"--metrics-port={metrics_port}",
        "--allow-metrics=true",
        "--allow-gpu-metrics=false",
        "--strict-readiness=true",
        "--exit-on-error=true",
        "--model-control-mode=none",
        "--pinned-memory-pool-byte-size=0",
        f"--log-verbose={log_verbose}",
    ]


def build_environment() -> dict[str, str]:
    """The server's environment: libraries for the stub, llm_router on its path.

    The Python backend stub embeds this interpreter's libpython and links the
    libraries PyTriton vendors, both found through `LD_LIBRARY_PATH`. It
    starts without this virtualenv's site-packages, so `PYTHONPATH` names them
    and the folder holding `llm_router`.
    """
    import llm_router

    env = dict(os.environ)
    vendored = pytriton_root().parent.parent / "nvidia_pytriton.libs"
    library_path = [str(sysconfig.get_config_var("LIBDIR")), str(vendored)]
    if env.get("LD_LIBRARY_PATH"):
        library_path.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(library_path)

    package_root = Path(llm_router.__file__).resolve().parent.parent
    python_path = [
        str(package_root),
        sysconfig.get_path("purelib"),
        sysconfig.get_path("platlib"),
    ]
    if env.get("PYTHONPATH"):
        python_path.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(python_path))
    return env


def wait_ready(
    endpoints: TritonEndpoints,
    process: subprocess.Popen[bytes] | None,
    timeout_s: float,
    log_path: Path,
) -> None:
    """Poll the HTTP readiness endpoint until the model is ready."""
    url = f"http://{endpoints.http}/v2/models/{MODEL_NAME}/ready"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is None or process.poll() is not None:
            code = None if process is None else process.returncode
            msg = (
                f"tritonserver exited with code {code} before {MODEL_NAME} was "
                f"ready. From its log ({log_path}):\n{summarize_log(log_path)}"
            )
            raise TritonStartError(msg)
        # A stub that cannot load its libraries leaves Triton waiting for it.
        if _STUB_LINK_ERROR in _read(log_path):
            msg = (
                "The Python backend stub could not load its shared libraries. "
                f"From the log ({log_path}):\n{summarize_log(log_path)}"
            )
            raise TritonStartError(msg)
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    msg = (
        f"tritonserver did not report {MODEL_NAME} ready within {timeout_s:.0f} s. "
        f"From its log ({log_path}):\n{summarize_log(log_path)}"
    )
    raise TritonStartError(msg)


def summarize_log(path: Path, width: int = 600) -> str:
    """The log's error lines (Triton's `E...` lines and the loader's), or its tail."""
    lines = _read(path).splitlines()
    errors = [
        line[:width]
        for line in lines
        if (re.match(r"E\d{4} ", line) or line.startswith("error"))
        or _STUB_LINK_ERROR in line
    ]
    # Always logged on a machine without a GPU; not the reason for anything.
    errors = [line for line in errors if "CudaDriverHelper" not in line]
    return "\n".join(errors or [line[:width] for line in lines[-30:]]) or "(empty)"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serve_triton(
    model_repository: Path = MODEL_REPOSITORY, *, workspace: Path | None = None
) -> Iterator[TritonServer]:
    """A started server on free loopback ports, stopped on exit."""
    server = TritonServer(model_repository, workspace=workspace)
    try:
        server.start()
        yield server
    finally:
        server.close()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def main(argv: list[str] | None = None) -> int:
    """Run the server in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-repository", type=Path, default=MODEL_REPOSITORY)
    parser.add_argument("--workspace", type=Path, default=None)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--log-verbose", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    def request_stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # SIGTERM unwinds like Ctrl-C, so the server is stopped even mid-start.
    signal.signal(signal.SIGTERM, request_stop)
    if args.workspace is not None:
        args.workspace.mkdir(parents=True, exist_ok=True)
    server = TritonServer(
        args.model_repository,
        workspace=args.workspace,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        log_verbose=args.log_verbose,
    )
    try:
        endpoints = server.start()
        logger.info(
            "Triton serves %s: gRPC %s, HTTP %s, metrics %s; log %s",
            MODEL_NAME,
            endpoints.grpc,
            endpoints.http,
            endpoints.metrics_url,
            server.log_path,
        )
        while server.running:
            time.sleep(0.2)
    except TritonStartError as exc:
        logger.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        logger.info("stopping Triton")
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
