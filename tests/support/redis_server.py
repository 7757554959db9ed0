"""A real ``redis-server`` on 127.0.0.1 and a free port, for tests.

The server runs in the foreground (``--daemonize no``) as a child process with no
persistence, in its own directory. It can be stopped (SIGTERM), killed (SIGKILL) and
started again on the same port within a test, which is what the fallback tests need.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from tests.support.net import free_port

HOST: Final = "127.0.0.1"
START_TIMEOUT: Final = 10.0  # seconds; redis-server is usually up in a few ms
STOP_TIMEOUT: Final = 10.0
_PING: Final = b"PING\r\n"
_PONG: Final = b"+PONG"


def redis_server_binary() -> str:
    """The redis-server executable; a clear error if it is not installed."""
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.path.exists(p)),
        None,
    )
    if found is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    return found


class RedisServer:
    """One redis-server process; ``url`` stays the same across restarts."""

    __test__ = False

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        *,
        password: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.directory = directory
        self.password = password  # requirepass: clients must AUTH
        self.extra_args = tuple(extra_args)  # e.g. cluster mode or a TLS port
        self.host = HOST
        self.port = port or free_port(HOST)
        self._process: subprocess.Popen[bytes] | None = None
        self._log = directory / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        if self.running:
            raise RuntimeError("redis-server is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                self._command(), cwd=self.directory, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_for_ping()

    def stop(self) -> None:
        """Graceful stop (SIGTERM); a no-op when not running."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Sudden death (SIGKILL), as when a Redis pod is lost."""
        self._signal(signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP: the server keeps its sockets but answers nothing (a hung Redis)."""
        self._require_process().send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._require_process().send_signal(signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def _command(self) -> list[str]:
        return [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.directory),
            *(["--requirepass", self.password] if self.password else []),
            *self.extra_args,
        ]  # fmt: skip

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            raise RuntimeError("redis-server is not running")
        return self._process

    def _signal(self, signum: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signum)
        process.send_signal(signal.SIGCONT)  # a paused server must wake to act on SIGTERM
        process.wait(timeout=STOP_TIMEOUT)

    def _wait_for_ping(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited at startup:\n{self.log_text()}")
            if self._answers_ping():
                return
            time.sleep(0.01)
        self.kill()
        raise RuntimeError(f"redis-server did not answer PING in {START_TIMEOUT}s")

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                if self.password:  # a NOAUTH error also proves the server is up
                    sock.sendall(_PING)
                    return sock.recv(64).startswith((_PONG, b"-NOAUTH"))
                sock.sendall(_PING)
                return sock.recv(64).startswith(_PONG)
        except OSError:
            return False
