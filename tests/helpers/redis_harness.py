"""Throwaway redis-server processes for tests.

Each :class:`RedisServer` owns one ``redis-server`` on a free loopback port (never 6379), with
no persistence unless asked (``appendonly=True`` for AOF). Tests can ``stop()`` it (SIGTERM),
``kill()`` it (SIGKILL) and ``restart()`` it on the same port and data directory.

Every process is killed when the test session ends however it ends: fixture teardown, an
``atexit`` hook (Ctrl-C, failures) and, on Linux, a parent-death signal so that even a
SIGKILLed pytest takes its servers with it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server")
MISSING_MESSAGE = (
    "redis-server was not found on PATH. jobwire's tests start their own throwaway Redis "
    "servers; install it with `apt-get install redis-server` (Debian/Ubuntu), "
    "`brew install redis` (macOS) or from https://redis.io/download."
)
FORBIDDEN_PORT = 6379  # a developer's own Redis may live there; tests never touch it

_live: set[RedisServer] = set()


def _set_parent_death_signal() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    """Return a loopback TCP port that is free right now (never 6379)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != FORBIDDEN_PORT:
            return port


class RedisServerError(RuntimeError):
    """The harness could not start or reach its redis-server."""


class CertificateAuthority:
    """A throwaway certificate authority with a server and a client certificate (openssl).

    The server certificate names 127.0.0.1 and localhost, so clients verify it fully.
    """

    def __init__(self) -> None:
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RedisServerError("TLS tests need the openssl command (apt-get install openssl)")
        self.dir = Path(tempfile.mkdtemp(prefix="jobwire-ca-"))
        self.ca, self.ca_key = self.dir / "ca.crt", self.dir / "ca.key"

        def run(*args: str) -> None:
            subprocess.run([openssl, *args], cwd=self.dir, check=True, capture_output=True)

        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=jobwire test CA", "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
        (self.dir / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        for name in ("server", "client"):
            run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=jobwire {name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr")  # fmt: skip
            run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", "san.cnf",
                "-out", f"{name}.crt")  # fmt: skip
        self.server_cert, self.server_key = self.dir / "server.crt", self.dir / "server.key"
        self.client_cert, self.client_key = self.dir / "client.crt", self.dir / "client.key"

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


_ca: CertificateAuthority | None = None


def certificate_authority() -> CertificateAuthority:
    """The session's test CA (made on first use, deleted at exit)."""
    global _ca
    if _ca is None:
        _ca = CertificateAuthority()
        atexit.register(_ca.close)
    return _ca


class RedisServer:
    """One redis-server process owned by the test session."""

    def __init__(
        self,
        *,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        extra_args: Sequence[str] = (),
        sentinel_for: RedisServer | None = None,
        tls: bool = False,
        tls_auth_clients: str = "optional",
    ) -> None:
        if REDIS_SERVER is None:
            raise RedisServerError(MISSING_MESSAGE)
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.extra_args = list(extra_args)
        self.sentinel_for = sentinel_for  # run as a Sentinel monitoring that server
        # TLS only (no plain port); "yes" makes clients present a certificate of the CA
        self.ca = certificate_authority() if tls else None
        self.tls_auth_clients = tls_auth_clients
        self.dir = Path(tempfile.mkdtemp(prefix="jobwire-redis-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (``rediss://`` for a TLS server)."""
        return f"{'rediss' if self.ca else 'redis'}://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def start(self, *, timeout: float = 10.0) -> RedisServer:
        """Start on a fresh free port (retrying if another process grabs it first)."""
        last = ""
        for _ in range(5):
            self.port = free_port()
            try:
                self._spawn(timeout)
                return self
            except RedisServerError as exc:
                last = str(exc)
        raise RedisServerError(f"could not start redis-server: {last}")

    def restart(self, *, timeout: float = 10.0) -> None:
        """Start again on the same port and data directory (after stop or kill)."""
        if self.running:
            self.stop()
        self._spawn(timeout)

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM) and wait for the process to exit."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Kill at once (SIGKILL), as a crash or an OOM kill would."""
        self._signal(signal.SIGKILL, 10.0)

    def close(self) -> None:
        """Kill the process if it runs and delete its data directory."""
        self.kill()
        _live.discard(self)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- internals

    def _command(self) -> list[str]:
        assert REDIS_SERVER is not None
        if self.sentinel_for is not None:
            conf = self.dir / "sentinel.conf"
            conf.write_text(
                f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor mymaster 127.0.0.1 {self.sentinel_for.port} 1\n"
                # a failover test waits for these, not for the defaults of 30 s and 3 min
                "sentinel down-after-milliseconds mymaster 1000\n"
                "sentinel failover-timeout mymaster 10000\n"
            )
            return [REDIS_SERVER, str(conf), "--sentinel", "--logfile", str(self.dir / "redis.log")]
        ports = ["--port", str(self.port)]
        if self.ca is not None:
            ports = [
                "--port", "0", "--tls-port", str(self.port),
                "--tls-cert-file", str(self.ca.server_cert),
                "--tls-key-file", str(self.ca.server_key),
                "--tls-ca-cert-file", str(self.ca.ca),
                "--tls-auth-clients", self.tls_auth_clients,
            ]  # fmt: skip
        return [
            REDIS_SERVER,
            *ports,
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--daemonize", "no",
            "--logfile", str(self.dir / "redis.log"),
            *self.extra_args,
        ]  # fmt: skip

    def _spawn(self, timeout: float) -> None:
        self.proc = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_set_parent_death_signal if sys.platform == "linux" else None,
        )
        _live.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RedisServerError(f"redis-server exited at start: {self._log_tail()}")
            if self._ping():
                return
            time.sleep(0.01)  # start-up wait in the harness, not a code path under test
        self.kill()
        raise RedisServerError(f"redis-server did not answer within {timeout}s")

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as raw:
                s = raw
                if self.ca is not None:
                    context = ssl.create_default_context(cafile=str(self.ca.ca))
                    context.load_cert_chain(str(self.ca.client_cert), str(self.ca.client_key))
                    s = context.wrap_socket(raw, server_hostname="127.0.0.1")
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _signal(self, sig: int, timeout: float) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _log_tail(self) -> str:
        try:
            return (self.dir / "redis.log").read_text()[-500:]
        except OSError:
            return "(no log)"


def wait_replicated(primary: RedisServer, replicas: int = 1, timeout: float = 20.0) -> None:
    """Wait until ``primary`` has ``replicas`` replicas online and in sync."""
    import redis  # the harness itself needs no client library elsewhere

    deadline = time.monotonic() + timeout
    with redis.Redis(port=primary.port) as r:
        while time.monotonic() < deadline:
            info = r.info("replication")
            online = [
                v for k, v in info.items()
                if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"
            ]  # fmt: skip
            if len(online) >= replicas:
                return
            time.sleep(0.05)  # harness start-up wait
    raise RedisServerError(f"no {replicas} replicas in sync within {timeout}s")


def close_all() -> None:
    """Kill every server this process started (atexit and session teardown)."""
    for server in list(_live):
        server.close()


atexit.register(close_all)


@contextlib.contextmanager
def redis_server(**options: object) -> Iterator[RedisServer]:
    """Context manager: a started server, closed on exit."""
    server = RedisServer(**options)  # type: ignore[arg-type]
    try:
        yield server.start()
    finally:
        server.close()


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return state != "Z"


class RedisCluster:
    """A throwaway Redis Cluster on loopback: ``masters`` masters with one replica each.

    Its nodes are :class:`RedisServer` processes started with ``--cluster-enabled yes`` and
    joined by ``redis-cli --cluster create``; :meth:`start` returns once every node reports
    ``cluster_state:ok``. ``url`` is the ``redis+cluster://`` URL naming every master.
    """

    def __init__(self, masters: int = 3, *, node_timeout_ms: int = 2000) -> None:
        self.masters = masters
        self.node_timeout_ms = node_timeout_ms
        self.nodes: list[RedisServer] = []

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:P1,127.0.0.1:P2,.../0`` (every node)."""
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)
        return f"redis+cluster://{hosts}/0"

    def start(self, *, timeout: float = 30.0) -> RedisCluster:
        """Start the nodes, create the cluster and wait until it serves every slot."""
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RedisServerError("cluster tests need redis-cli (it comes with redis-server)")
        for _ in range(self.masters * 2):
            args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", str(self.node_timeout_ms),
                    # a replica of a killed master takes over at once, whatever its lag
                    "--cluster-replica-validity-factor", "0",
                    "--repl-diskless-sync-delay", "0"]  # fmt: skip
            node = RedisServer(extra_args=args)
            self.nodes.append(node.start())
        hosts = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *hosts, "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=timeout,
        )  # fmt: skip
        self.wait_ok(timeout=timeout)
        for master in self.primaries():
            wait_replicated(master, timeout=timeout)
        return self

    def cli(self, node: RedisServer, *args: str, timeout: float = 60.0) -> str:
        """Run ``redis-cli -p PORT args...`` against one node and return its output."""
        cli = shutil.which("redis-cli")
        assert cli is not None
        done = subprocess.run(
            [cli, "-p", str(node.port), *args], check=True, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        return done.stdout

    def info(self, node: RedisServer) -> dict[str, str]:
        """``CLUSTER INFO`` of one node as a dict."""
        out = self.cli(node, "CLUSTER", "INFO", timeout=5)
        return dict(line.split(":", 1) for line in out.split() if ":" in line)

    def wait_ok(self, *, timeout: float = 30.0) -> None:
        """Wait until every running node says ``cluster_state:ok`` and agrees on the slots."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                states = [self.info(n) for n in self.nodes if n.running]
                if all(
                    s.get("cluster_state") == "ok" and s.get("cluster_slots_ok") == "16384"
                    for s in states
                ):
                    return
            except (subprocess.SubprocessError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RedisServerError(f"the cluster did not become ok within {timeout}s")
            time.sleep(0.05)  # harness start-up wait, not a code path under test

    def primaries(self) -> list[RedisServer]:
        """The running nodes that are masters now."""
        return [n for n in self.nodes if n.running and self.role(n) == "master"]

    def role(self, node: RedisServer) -> str:
        """``master`` or ``slave``, as the node itself says."""
        return self.cli(node, "ROLE", timeout=5).split()[0]

    def replica_of(self, master: RedisServer) -> RedisServer:
        """A running replica of ``master``."""
        for node in self.nodes:
            if node is master or not node.running or self.role(node) != "slave":
                continue
            out = self.cli(node, "INFO", "replication", timeout=5)
            if f"master_port:{master.port}" in out:
                return node
        raise RedisServerError(f"no replica of the master on port {master.port}")

    def owner_of(self, key: str) -> RedisServer:
        """The master serving ``key``'s slot."""
        alive = next(n for n in self.nodes if n.running)
        slot = int(self.cli(alive, "CLUSTER", "KEYSLOT", key, timeout=5))
        for node in self.primaries():
            for line in self.cli(node, "CLUSTER", "NODES", timeout=5).splitlines():
                fields = line.split()
                if "myself" not in fields[2]:
                    continue
                for part in fields[8:]:
                    low, _, high = part.partition("-")
                    if low.isdigit() and int(low) <= slot <= int(high or low):
                        return node
        raise RedisServerError(f"no master serves slot {slot}")

    def migrate_slot(self, slot: int, source: RedisServer, target: RedisServer) -> int:
        """Move one slot from ``source`` to ``target`` as ``redis-cli --cluster reshard`` does.

        IMPORTING / MIGRATING, then MIGRATE of its keys in batches of 10 (so that clients
        meet ASK and TRYAGAIN meanwhile), then SETSLOT NODE on every master. Returns the
        number of keys moved.
        """
        import redis

        source_id, target_id = self.node_id(source), self.node_id(target)
        moved = 0
        with redis.Redis(port=source.port) as src, redis.Redis(port=target.port) as dst:
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10):
                src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
                moved += len(keys)
                time.sleep(0.01)  # let clients run against a half-moved slot
            for node in self.primaries():
                with redis.Redis(port=node.port) as r:
                    r.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        return moved

    def node_id(self, node: RedisServer) -> str:
        return self.cli(node, "CLUSTER", "MYID", timeout=5).strip()

    def flush(self) -> None:
        """Empty every master (replicas follow); scripts stay loaded."""
        for node in self.primaries():
            self.cli(node, "FLUSHALL", timeout=10)

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        self.nodes.clear()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
