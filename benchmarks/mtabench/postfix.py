"""The peer: a throwaway Postfix instance relaying everything to the sink.

Its own config, queue and data directories under the run's directory (`postfix -c DIR`),
smtpd on a loopback port, no local delivery, TLS off, fsync and everything else as shipped.
Daemons run without chroot (Debian's stock master.cf chroots most of them, which needs copies
of /etc files in the queue directory; it makes no difference to the work done per message).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from mtabench.net import LOOPBACK, free_port, wait_smtp_banner
from mtabench.procstat import group_members

START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
MAIL_OWNER = "postfix"
# Enough daemons for 20 inbound sessions and 20 outbound connections.
DEFAULT_PROCESS_LIMIT = 100
DESTINATION_CONCURRENCY = 20

# type private unpriv chroot wakeup maxproc command: the daemons a relay needs, from Debian's
# master.cf (chroot off), plus postlogd so that logs go to a file as ours do.
MASTER_SERVICES = """\
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
"""


def main_cf(root: Path, sink: str, settings: Sequence[tuple[str, str]] = ()) -> str:
    """The peer's main.cf; `settings` (from `--postfix-set`) come last and win."""
    host, port = sink.rsplit(":", 1)
    extra = "".join(f"{name} = {value}\n" for name, value in settings)
    return f"""\
compatibility_level = 3.6
queue_directory = {root / "queue"}
data_directory = {root / "data"}
maillog_file = {root / "maillog"}
maillog_file_prefixes = {root}
myhostname = peer.bench.localdomain
inet_interfaces = {LOOPBACK}
inet_protocols = ipv4
mydestination =
relay_domains =
mynetworks = 127.0.0.0/8
relayhost = [{host}]:{port}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
smtpd_tls_security_level = none
smtp_tls_security_level = none
smtp_dns_support_level = disabled
biff = no
default_process_limit = {DEFAULT_PROCESS_LIMIT}
smtp_destination_concurrency_limit = {DESTINATION_CONCURRENCY}
{extra}"""


def master_cf(smtp_port: int) -> str:
    return f"{LOOPBACK}:{smtp_port} inet n - n - - smtpd\n{MASTER_SERVICES}"


SETTING_NAME = re.compile(r"[a-z][a-z0-9_]*")


def parse_setting(text: str) -> tuple[str, str]:
    """`NAME=VALUE` of `--postfix-set`, for argparse (a bad one is a usage error)."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not SETTING_NAME.fullmatch(name) or "\n" in value:
        raise argparse.ArgumentTypeError(f"expected a main.cf NAME=VALUE, got {text!r}")
    return name, value


class PostfixPeer:
    """`postfix -c DIR start` ... `postfix -c DIR stop`; the master's group is the peer."""

    name = "postfix"

    def __init__(self, workdir: Path, sink: str, settings: Sequence[tuple[str, str]] = ()) -> None:
        self.workdir = workdir
        self._settings = tuple(settings)
        self.smtp_port = free_port()
        self._sink = sink
        self._conf = workdir / "conf"
        self._master: int | None = None

    @property
    def pgid(self) -> int:
        assert self._master is not None
        return self._master

    async def start(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("the Postfix peer needs root (postfix start runs as root)")
        self._write_config()
        await self._postfix("check")
        await self._postfix("start")
        self._master = self._master_pid()
        if self._master is None:
            raise RuntimeError(f"postfix started but wrote no master.pid: {self.log_tail()}")
        try:
            await wait_smtp_banner(LOOPBACK, self.smtp_port, START_TIMEOUT)
        except TimeoutError as exc:
            raise RuntimeError(f"postfix did not start: {self.log_tail()}") from exc

    async def stop(self) -> None:
        if self._master is None:
            self._master = self._master_pid()  # a start that failed half-way
        if self._master is None:
            return
        with contextlib.suppress(RuntimeError):  # the process group check below decides
            await self._postfix("stop")
        deadline = time.monotonic() + STOP_TIMEOUT
        # Nothing to wait on but /proc: the daemons are the master's children, not ours.
        while group_members(self._master) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        if group_members(self._master):
            os.killpg(self._master, signal.SIGKILL)  # the group of the master we started
        self._master = None

    def _master_pid(self) -> int | None:
        try:
            return int((self.workdir / "queue" / "pid" / "master.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def log_tail(self, lines: int = 15) -> str:
        path = self.workdir / "maillog"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _write_config(self) -> None:
        self.workdir.chmod(0o755)  # the daemons drop root; they must reach the queue
        self._conf.mkdir(parents=True, exist_ok=True)
        (self.workdir / "queue").mkdir(exist_ok=True)
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        shutil.chown(data, MAIL_OWNER, MAIL_OWNER)
        (self._conf / "main.cf").write_text(main_cf(self.workdir, self._sink, self._settings))
        (self._conf / "master.cf").write_text(master_cf(self.smtp_port))

    async def _postfix(self, command: str) -> None:
        # postfix(1) reports to stderr only on a terminal; its log file has the reasons.
        binary = shutil.which("postfix") or "/usr/sbin/postfix"
        # A file, not a pipe: the master daemon it starts could hold a pipe open for ever.
        out_path = self.workdir / "postfix-command.out"
        with out_path.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                binary,
                "-c",
                str(self._conf),
                command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
            returncode = await process.wait()
        if returncode != 0:
            detail = out_path.read_text(errors="replace").strip() or self.log_tail()
            raise RuntimeError(f"postfix {command} failed ({returncode}): {detail}")
