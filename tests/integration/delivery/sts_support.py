"""A test CA (trustme) for outbound TLS, and an HTTPS MTA-STS policy server on loopback."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme
from aiohttp import web

from tests.support.dns_server import TestDNSServer
from tests.support.net import free_port, unused_loopback_address

POLICY_PATH = "/.well-known/mta-sts.txt"
MOVED_PATH = "/moved/mta-sts.txt"  # serves the policy too: a followed redirect would work


class TestPki:
    """One CA; server contexts for any host name; its certificate in a PEM file for
    `[delivery] tls_ca_file`."""

    __test__ = False

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.ca_file = directory / "test-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))

    def server_context(self, *hostnames: str) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*hostnames).configure_cert(context)
        return context


def policy_text(mode: str, *mx: str, max_age: int = 86400) -> str:
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {host}" for host in mx)]
    return "\r\n".join([*lines, f"max_age: {max_age}", ""])


class PolicyServer:
    """`https://mta-sts.<domain>:<port>/.well-known/mta-sts.txt` on its own loopback
    address. What it answers can be changed at any time; `hits` counts the requests."""

    def __init__(self, context: ssl.SSLContext, policy: str) -> None:
        self.host = unused_loopback_address()
        self.port = free_port(self.host)
        self.policy = policy
        self.status = 200
        self.content_type = "text/plain"
        self.redirect = False  # answer the policy path with a redirect to MOVED_PATH
        self.hits = 0
        self._context = context
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> PolicyServer:
        app = web.Application()
        app.router.add_get(POLICY_PATH, self._policy)
        app.router.add_get(MOVED_PATH, self._moved)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port, ssl_context=self._context).start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def restart(self, context: ssl.SSLContext) -> None:
        """Serve on the same address with another certificate."""
        await self.stop()
        self._context = context
        await self.__aenter__()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _policy(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.redirect:
            raise web.HTTPFound(MOVED_PATH)
        return web.Response(status=self.status, text=self.policy, content_type=self.content_type)

    async def _moved(self, request: web.Request) -> web.Response:
        return web.Response(text=self.policy, content_type="text/plain")


def publish(dns: TestDNSServer, domain: str, server: PolicyServer, policy_id: str) -> None:
    """The `_mta-sts` TXT record (replacing any) and the policy host's address."""
    dns.remove(f"_mta-sts.{domain}", "TXT")
    dns.add(f"_mta-sts.{domain}", "TXT", f'"v=STSv1; id={policy_id};"', ttl=0)
    dns.remove(f"mta-sts.{domain}", "A")
    dns.add(f"mta-sts.{domain}", "A", server.host)
