"""``livecore serve --tls-cert/--tls-key``: HTTPS and WSS, for phones' cameras."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers import Node

LOOPBACK = ipaddress.ip_address("127.0.0.1")


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(LOOPBACK)]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )  # fmt: skip
    return cert_path, key_path


def test_serves_https(tmp_path: Path, redis_url: str) -> None:
    cert, key = self_signed(tmp_path)
    node = Node(tmp_path / "node", redis_url=redis_url,
                extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])  # fmt: skip
    node.data_dir.parent.mkdir(parents=True, exist_ok=True)
    with node.stdout_path.open("w") as out, node.stderr_path.open("w") as err:
        node.proc = subprocess.Popen(node.command(), env=node.env(), stdout=out, stderr=err)
    try:
        base = f"https://127.0.0.1:{node.port}"
        context = ssl.create_default_context(cafile=str(cert))
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"{base}/healthz", verify=context, timeout=1)
                break
            except httpx.HTTPError:
                assert node.proc.poll() is None, node.stderr_path.read_text()[-2000:]
                assert time.monotonic() < deadline, "no HTTPS answer within 30 s"
                time.sleep(0.1)
        assert answer.status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{node.port}/healthz", timeout=2)
    finally:
        node.stop()


def test_tls_flags_go_together(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    node = Node(tmp_path / "node", extra_args=["--tls-cert", str(cert)])
    done = subprocess.run(
        node.command(), env=node.env(), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2 and "--tls-key" in done.stderr
    missing = Node(
        tmp_path / "node", extra_args=["--tls-cert", str(cert), "--tls-key", "/nonexistent.pem"]
    )
    done = subprocess.run(
        missing.command(), env=missing.env(), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2 and "no such file" in done.stderr


def test_tls_is_1_2_or_newer_with_forward_secret_aead(tmp_path: Path, redis_url: str) -> None:
    """TLS 1.1 and a TLS 1.2 suite without ECDHE or AEAD are refused; TLS 1.2 with
    ECDHE-AES-GCM and TLS 1.3 are served."""
    cert, key = self_signed(tmp_path)
    node = Node(tmp_path / "node", redis_url=redis_url,
                extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])  # fmt: skip
    node.data_dir.parent.mkdir(parents=True, exist_ok=True)
    with node.stdout_path.open("w") as out, node.stderr_path.open("w") as err:
        node.proc = subprocess.Popen(node.command(), env=node.env(), stdout=out, stderr=err)
    try:
        base = f"https://127.0.0.1:{node.port}"

        def context(version: ssl.TLSVersion, ciphers: str | None = None) -> ssl.SSLContext:
            made = ssl.create_default_context(cafile=str(cert))
            made.minimum_version = made.maximum_version = version
            if ciphers is not None:
                made.set_ciphers(ciphers)
            return made

        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/healthz", verify=context(ssl.TLSVersion.TLSv1_3), timeout=1)
                break
            except httpx.HTTPError:
                assert node.proc.poll() is None, node.stderr_path.read_text()[-2000:]
                assert time.monotonic() < deadline, "no HTTPS answer within 30 s"
                time.sleep(0.1)
        good = context(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256")
        assert httpx.get(f"{base}/healthz", verify=good).status_code == 200
        for refused in (
            context(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA"),  # CBC, no AEAD
            context(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES256-SHA384"),
        ):
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"{base}/healthz", verify=refused, timeout=2)
        try:
            old = context(ssl.TLSVersion.TLSv1_1, "ALL:@SECLEVEL=0")
        except (ssl.SSLError, ValueError):
            old = None  # this OpenSSL cannot even offer TLS 1.1
        if old is not None:
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"{base}/healthz", verify=old, timeout=2)
    finally:
        node.stop()
