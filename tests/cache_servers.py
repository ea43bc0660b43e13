"""Real cache servers for tests: redis-server on loopback, with AUTH and TLS."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@dataclass
class TLSFiles:
    """A private CA and a server certificate for 127.0.0.1 signed by it."""

    ca: Path
    cert: Path
    key: Path


@dataclass
class RedisServer:
    """A redis-server process on a loopback port."""

    port: int
    process: subprocess.Popen[bytes]
    tls: bool

    @property
    def url(self) -> str:
        """The URL a client connects to (rediss:// when TLS is on)."""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        """Stop the server abruptly, as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def find_free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(
    workdir: Path,
    *,
    password: str | None = None,
    tls: TLSFiles | None = None,
    port: int | None = None,
) -> RedisServer:
    """Start redis-server on loopback and wait until it accepts connections."""
    port = port or find_free_port()
    args = [
        REDIS_SERVER,
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(workdir),
    ]  # fmt: skip
    if tls is None:
        args += ["--port", str(port)]
    else:
        args += [
            "--port", "0",
            "--tls-port", str(port),
            "--tls-cert-file", str(tls.cert),
            "--tls-key-file", str(tls.key),
            "--tls-ca-cert-file", str(tls.ca),
            "--tls-auth-clients", "no",
        ]  # fmt: skip
    if password is not None:
        args += ["--requirepass", password]
    process = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while True:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.2),
        ):
            return RedisServer(port, process, tls is not None)
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            msg = f"redis-server did not start on port {port}"
            raise RuntimeError(msg)
        time.sleep(0.02)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A plain redis-server, killed after the test."""
    server = start_redis(tmp_path)
    yield server
    server.kill()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A throwaway CA and a server certificate for 127.0.0.1."""
    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llm-router test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "redis")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TLSFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return files


@pytest.fixture
def hung_server() -> Iterator[int]:
    """A port whose peer completes the TCP handshake and then never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port: int = sock.getsockname()[1]
        yield port
