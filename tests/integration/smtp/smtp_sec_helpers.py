"""Helpers for the inbound security tests: a trustme CA, users files, TLS raw clients."""

from __future__ import annotations

import asyncio
import base64
import ssl
import struct
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib
import bcrypt
import trustme

from tests.integration.smtp.harness import HOSTNAME, TIMEOUT, Harness, RawClient

PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret"}
MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


@dataclass
class TlsFiles:
    ca: trustme.CA
    cert_file: Path
    key_file: Path

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def reissue(self, ca: trustme.CA) -> None:
        """Replace the files with a certificate from `ca` (a Secret rotated in place)."""
        self.ca = ca
        write_pair(ca, self.cert_file, self.key_file)


def write_pair(ca: trustme.CA, cert_file: Path, key_file: Path) -> None:
    leaf = ca.issue_cert(HOSTNAME, "127.0.0.1")
    cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key_file.write_bytes(leaf.private_key_pem.bytes())


def tls_files(tmp_path: Path) -> TlsFiles:
    ca = trustme.CA()
    files = TlsFiles(ca, tmp_path / "tls.crt", tmp_path / "tls.key")
    write_pair(ca, files.cert_file, files.key_file)
    return files


def users_file(tmp_path: Path) -> Path:
    """alice with a plain password, bob with a bcrypt hash (cost 4: tests stay fast)."""
    path = tmp_path / "smtp-users"
    bob_hash = bcrypt.hashpw(PASSWORDS["bob"].encode(), bcrypt.gensalt(4)).decode()
    path.write_text(f"# test users\nalice:{PASSWORDS['alice']}\nbob:{bob_hash}\n")
    return path


def tls_config(tmp_path: Path) -> tuple[TlsFiles, dict[str, object]]:
    """TLS files and the SmtpConfig overrides for STARTTLS with AUTH users."""
    files = tls_files(tmp_path)
    overrides: dict[str, object] = {
        "tls_cert_file": files.cert_file,
        "tls_key_file": files.key_file,
        "auth_users_file": users_file(tmp_path),
        "auth_failure_delay": 0.01,
    }
    return files, overrides


def plain_credentials(user: str, password: str) -> bytes:
    return base64.b64encode(f"\0{user}\0{password}".encode())


async def raw_starttls(raw: RawClient, files: TlsFiles) -> None:
    """Greeting, EHLO, STARTTLS, handshake (the raw client then speaks TLS)."""
    assert (await raw.reply()).startswith("220 ")
    assert (await raw.command(b"EHLO client.test\r\n")).startswith("250-")
    assert (await raw.command(b"STARTTLS\r\n")).startswith("220 ")
    await upgrade(raw, files)


async def upgrade(raw: RawClient, files: TlsFiles) -> None:
    async with asyncio.timeout(TIMEOUT):
        await raw.writer.start_tls(files.client_context(), server_hostname=HOSTNAME)


async def raw_login(raw: RawClient, files: TlsFiles, user: str = "alice") -> None:
    await raw_starttls(raw, files)
    assert (await raw.command(b"EHLO client.test\r\n")).startswith("250-")
    reply = await raw.command(b"AUTH PLAIN " + plain_credentials(user, PASSWORDS[user]) + b"\r\n")
    assert reply == "235 2.7.0 Authentication successful"


def tls_client(harness: Harness, files: TlsFiles) -> aiosmtplib.SMTP:
    """An aiosmtplib client that must STARTTLS and trusts only the test CA."""
    return aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=harness.port,
        local_hostname="client.test",
        start_tls=True,
        tls_context=files.client_context(),
        timeout=TIMEOUT,
    )


def proxy_v1(src: str, src_port: int = 40000) -> bytes:
    family = "TCP6" if ":" in src else "TCP4"
    dst = "::1" if ":" in src else "127.0.0.1"
    return f"PROXY {family} {src} {dst} {src_port} 25\r\n".encode()


def proxy_v2(src: str, src_port: int = 40000, *, command: int = 1) -> bytes:
    """A binary header for TCP over IPv4 (command 1 = PROXY, 0 = LOCAL)."""
    addresses = bytes(map(int, src.split("."))) + bytes([127, 0, 0, 1])
    body = addresses + struct.pack("!HH", src_port, 25)
    return PROXY_V2_SIGNATURE + bytes([0x20 | command, 0x11]) + struct.pack("!H", len(body)) + body


async def wait_for(condition: object, what: str) -> None:
    """Poll `condition()` until true, bounded by TIMEOUT (the server acts asynchronously)."""
    assert callable(condition)
    async with asyncio.timeout(TIMEOUT):
        while not condition():  # noqa: ASYNC110 (state inside the server, no event)
            await asyncio.sleep(0.01)
