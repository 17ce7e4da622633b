"""A real redis-server for the shared-backend tests, and the worker their subprocesses run.

The session starts its own ``redis-server`` (no persistence, 127.0.0.1, a free port, a
temporary directory) and stops it at the end; nothing here mocks Redis. Each test uses
its own account name, so tests never see each other's keys.

``python tests/redis_support.py '<json>'`` is one worker process of the multi-process
tests: it opens a pool on the emulator with a RedisBackend, runs a batch, and prints
``READY`` when it starts and ``REPORT <json>`` at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parent.parent
_accounts = itertools.count(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process of our own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        for _ in range(5):  # the free port may be taken between probing and binding
            self.port = free_port()
            self._log = (self.directory / f"redis-{self.port}.log").open("wb")
            self.process = subprocess.Popen(  # noqa: S603  # our redis-server, fixed arguments
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.directory), "--daemonize", "no"],
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            if self._wait_ready():
                return
            self.stop()
        raise RuntimeError("could not start redis-server")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                time.sleep(0.02)
        return False

    def command(self, *args: str | int) -> Any:
        """Run one command with a plain synchronous client (admin, inspection)."""
        import redis  # noqa: PLC0415  # only the redis tests need it

        with redis.Redis(port=self.port, socket_timeout=5) as client:
            return client.execute_command(*args)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        log, self._log = self._log, None
        if log is not None:
            log.close()


@contextlib.contextmanager
def running_redis(directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def redis_server_fixture() -> Any:
    """A session-scoped ``redis_server`` fixture: ``redis_server = redis_server_fixture()``."""

    @pytest.fixture(scope="session", name="redis_server")
    def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is missing: apt-get install redis-server (make test does)")
        with running_redis(tmp_path_factory.mktemp("redis")) as server:
            yield server

    return redis_server


def ledger(server: RedisServer, account: str) -> dict[str, int]:
    """The account's shared ledger in Redis, as integers."""
    raw = server.command("HGETALL", f"{{sc:{account}}}:ledger")
    return {key.decode(): int(value) for key, value in raw.items()}


def server_ms(server: RedisServer) -> int:
    """The Redis server's clock, in milliseconds."""
    seconds, micros = server.command("TIME")
    return int(seconds) * 1000 + int(micros) // 1000


def new_account(prefix: str = "t") -> str:
    """An account name no other test uses."""
    return f"{prefix}{os.getpid()}-{next(_accounts)}"


# -- worker processes ---------------------------------------------------------------------------


class Worker:
    """A worker subprocess (always reaped: use it as a context manager)."""

    def __init__(self, config: dict[str, Any]) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.process = subprocess.Popen(  # noqa: S603  # this interpreter and this file
            [sys.executable, str(Path(__file__)), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reap()

    def wait_ready(self, timeout: float = 20.0) -> None:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"worker ended early: {self._stderr()}")
            if line.strip() == b"READY":
                return
        raise AssertionError("worker not ready in time")

    def go(self) -> None:
        """Let a worker started with ``"go": true`` run its batch."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def report(self, timeout: float = 40.0) -> dict[str, Any]:
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.reap()
            raise
        for line in out.decode().splitlines():
            if line.startswith("REPORT "):
                document: dict[str, Any] = json.loads(line[len("REPORT ") :])
                return document
        raise AssertionError(f"worker gave no report (rc={self.process.returncode}): {err!r}")

    def _stderr(self) -> str:
        with contextlib.suppress(Exception):
            self.process.kill()
            _, err = self.process.communicate(timeout=5)
            return err.decode(errors="replace")
        return ""

    def reap(self) -> None:
        process = self.process
        if process.poll() is None:
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=10)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


async def _work(config: dict[str, Any]) -> dict[str, Any]:
    from searchcans_async import LeaseExpiredError, SearchCans  # noqa: PLC0415  # imported where the test needs it
    from searchcans_async.redis import RedisBackend  # noqa: PLC0415  # imported where the test needs it

    backend = RedisBackend.from_url(
        config["redis"],
        account=config["account"],
        request_timeout=config.get("request_timeout", 0.5),
        lease=config.get("lease", 2.0),
        poll_interval=config.get("poll_interval", 0.2),
        unavailable_after=config.get("unavailable_after", 3.0),
        socket_timeout=config.get("socket_timeout", 0.5),
    )
    prefix = config.get("prefix", "w")
    items = [f"{prefix}-{i}" for i in range(config["items"])]
    async with (
        backend,
        SearchCans(
            config["key"], base_url=config["base_url"], timeout=config.get("timeout", 0.5)
        ) as client,
        client.lanes(
            budget=config.get("budget"),
            floor=config.get("floor", 0),
            max_lanes=config.get("max_lanes"),
            recheck_every=config.get("recheck_every", 50),
            recheck_interval=None,
            settle_grace=config.get("settle_grace", 0.0),
            backend=backend,
        ) as pool,
    ):
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        if config.get("go"):
            await asyncio.to_thread(sys.stdin.readline)
        if config.get("duration"):
            asyncio.get_running_loop().call_later(config["duration"], pool.stop)
        report = await pool.run_batch(client.search, items, cost=1)
    errors = [type(outcome.error).__name__ for outcome in report.failed]
    return {
        "stop_reason": report.stop_reason.value,
        "succeeded": report.succeeded,
        "failed": errors,
        "lease_expired": sum(isinstance(o.error, LeaseExpiredError) for o in report.failed),
        "not_started": len(report.not_started),
        "unread_from": report.unread_from,
        "committed": report.credits_committed,
        "possibly_charged": report.credits_possibly_charged,
        "error": repr(report.error) if report.error is not None else None,
    }


def main() -> None:
    config = json.loads(sys.argv[1])
    result = asyncio.run(_work(config))
    sys.stdout.write("REPORT " + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
