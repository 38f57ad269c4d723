"""The authority emulator for the benchmarks: HTTPS on 127.0.0.1, in a child process or a thread.

The server has the demo client (a secret) and a certificate client whose key and certificate
are written next to the TLS files, so that every library can sign assertions with them.
Run alone as ``python benchmarks/emulator.py --serve-child DIR`` (what :func:`serve` does).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from msal_async.testing import DEMO_TENANT_ID, AuthorityEmulator, TLSFiles, serve_in_thread

LATENCY = 0.02  # seconds the emulator waits before answering every request
#: The emulator's client that authenticates with the certificate in ``Server.cert_file``.
CERT_CLIENT_ID = "b3c5e0a1-6d2f-4c7e-9a18-5f0d3e2b7c41"


@dataclass(frozen=True)
class Server:
    """Where the emulator listens, the CA file that verifies it, and the client certificate.

    Attributes:
        base_url: ``https://127.0.0.1:PORT``.
        ca_file: the CA that issued the server's certificate.
        pid: the process serving (this one in ``--server thread`` mode), for its CPU time.
        key_file: the certificate client's RSA-2048 private key (PEM).
        cert_file: the certificate client's self-signed certificate (PEM).
        pfx_file: the same key and certificate in a PKCS#12 file, without a passphrase.
    """

    base_url: str
    ca_file: str
    pid: int
    key_file: str
    cert_file: str
    pfx_file: str

    @property
    def authority(self) -> str:
        """The tenant authority URL."""
        return f"{self.base_url}/{DEMO_TENANT_ID}"

    @property
    def environment(self) -> str:
        """The cache's ``environment`` for this authority (msal's ``authority.instance``)."""
        return urlsplit(self.base_url).hostname or ""


def make_tls_files(directory: Path) -> TLSFiles:
    """Write a trustme CA and a certificate for 127.0.0.1 into ``directory``."""
    import trustme  # the test extra; only benchmarks and tests use it

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    tls = TLSFiles(
        certfile=directory / "cert.pem",
        keyfile=directory / "key.pem",
        ca_file=directory / "ca.pem",
    )
    ca.cert_pem.write_to_path(str(tls.ca_file))
    cert.cert_chain_pems[0].write_to_path(str(tls.certfile))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(tls.certfile), append=True)
    cert.private_key_pem.write_to_path(str(tls.keyfile))
    return tls


def make_client_certificate(directory: Path) -> tuple[rsa.RSAPrivateKey, Path, Path, Path]:
    """Write an RSA-2048 key and a self-signed certificate (PEM, and both in a PFX)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "msal-async-bench-client")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = directory / "client-key.pem", directory / "client-cert.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pfx_file = directory / "client.pfx"
    pfx_file.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"bench", key, cert, None, serialization.NoEncryption()
        )
    )
    return key, key_file, cert_file, pfx_file


@contextlib.contextmanager
def _serve_here(directory: Path, latency: float) -> Iterator[Server]:
    tls = make_tls_files(directory)
    _key, key_file, cert_file, pfx_file = make_client_certificate(directory)
    emulator = AuthorityEmulator(latency=latency)
    emulator.register_client(CERT_CLIENT_ID, certificate=cert_file.read_bytes())
    # msal re-sends one memoised assertion for 540 s, as Entra allows; the emulator's check
    # for a replayed jti (on by default) would refuse msal's certificate requests.
    emulator.reject_replayed_assertions = False
    with serve_in_thread(emulator, tls=tls) as base_url:
        yield Server(
            base_url, str(tls.ca_file), os.getpid(), str(key_file), str(cert_file), str(pfx_file)
        )


def serve_child(directory: str, latency: float) -> None:
    """The child process: serve the emulator, print where, and stop when stdin closes."""
    with _serve_here(Path(directory), latency) as server:
        print(json.dumps(server.__dict__), flush=True)
        sys.stdin.read()  # the parent closes our stdin when it is done


@contextlib.contextmanager
def serve(mode: str, latency: float = LATENCY) -> Iterator[Server]:
    """Serve the emulator over HTTPS on 127.0.0.1, in a child process or a thread of ours."""
    with tempfile.TemporaryDirectory(prefix="msal-async-bench-") as directory:
        if mode == "thread":
            with _serve_here(Path(directory), latency) as server:
                yield server
            return
        command = [sys.executable, __file__, "--serve-child", directory, "--latency", str(latency)]
        child = subprocess.Popen(  # noqa: S603 - our own interpreter running this file
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            line = child.stdout.readline()
            if not line:
                msg = f"the emulator process exited with status {child.wait()} before serving"
                raise RuntimeError(msg)
            yield Server(**json.loads(line))
        finally:
            child.stdin.close()
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            child.stdout.close()


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process ``pid``; None without ``/proc``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields[0] is the state (field 3 of proc(5)); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: Sequence[str] | None = None) -> int:
    """``--serve-child DIR``: serve until stdin closes (used by :func:`serve`)."""
    parser = argparse.ArgumentParser(prog="python benchmarks/emulator.py")
    parser.add_argument("--serve-child", metavar="DIR", required=True)
    parser.add_argument("--latency", type=float, default=LATENCY)
    options = parser.parse_args(argv)
    serve_child(options.serve_child, options.latency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
