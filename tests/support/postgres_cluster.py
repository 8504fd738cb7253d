"""A throwaway PostgreSQL cluster for the test suite: initdb into a temp dir, a free port on
127.0.0.1, stopped and removed at the end.

PostgreSQL refuses to run as root, so as root every server command runs as the ``postgres`` OS
user, and the cluster lives under /tmp (which that user can traverse) rather than under a
private temp dir of root's. Only 127.0.0.1 may connect (trust authentication, so no password
is ever needed or shown); the unix socket sits in a directory only the server's user can enter.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

SERVER_USER = "postgres"
SUPERUSER = "postgres"
# Durability is worth nothing for a cluster that is deleted after the run; these make every
# commit and CREATE DATABASE cheap.
TEST_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "'64MB'",
    "lc_messages": "'C'",
    "timezone": "'UTC'",
    "log_min_messages": "warning",
}
START_ATTEMPTS = 3


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (or no user to run them as)."""


class ClusterCommandFailed(RuntimeError):
    """initdb or pg_ctl failed; the message carries its error output."""


def find_bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl: the PATH first, then Debian's versioned dirs
    (highest version first), which are not on the PATH."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    candidates = []
    for directory in Path("/usr/lib/postgresql").glob("*/bin"):
        version = directory.parent.name
        if version.isdigit() and (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            candidates.append((int(version), directory))
    return max(candidates)[1] if candidates else None


def has_library(bin_dir: Path, name: str) -> bool:
    """Whether the server of ``bin_dir`` has the loadable module ``name`` in its package library
    directory (an extension such as pg_stat_statements, which the contrib modules ship)."""
    return (bin_dir.parent / "lib" / f"{name}.so").is_file()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresCluster:
    """One cluster in its own temp dir. ``start()`` it, then ``url(dbname)`` for SQLAlchemy."""

    def __init__(self, bin_dir: Path | None = None, *, settings: dict[str, str] | None = None) -> None:
        """``settings``: server settings beside TEST_SETTINGS (a benchmark's extension to load)."""
        found = bin_dir or find_bin_dir()
        if found is None:
            raise PostgresUnavailable(
                "PostgreSQL server binaries (initdb, pg_ctl) are not in PATH or /usr/lib/postgresql/*/bin"
            )
        self.bin_dir = found
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                self._server_user = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root, but there is no '{SERVER_USER}' user to run the server as"
                ) from None
        self.root = Path(tempfile.mkdtemp(prefix="tui-migrator-pg-", dir="/tmp"))
        # The server's user must be able to reach its data dir through this one.
        self.root.chmod(0o755)
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log_file = self.root / "server.log"
        self.port = 0
        self._extra_settings = dict(settings or {})
        self._running = False
        self._removed = False
        atexit.register(self.stop)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> PostgresCluster:
        """initdb (once) and start the server on a free port; waits until it accepts connections."""
        if not self.data_dir.exists():
            self._initdb()
        for attempt in range(START_ATTEMPTS):
            # Another process may take the port between choosing it and the server binding it.
            self.port = free_port()
            self._configure()
            try:
                self._start_server()
                return self
            except ClusterCommandFailed as error:
                if attempt == START_ATTEMPTS - 1:
                    raise ClusterCommandFailed(f"{error}\nserver log:\n{self.log_tail()}") from None
        return self

    def restart(self, *, down_seconds: float = 0.0) -> None:
        """Stop the server the way an operator's fast shutdown does (clients are disconnected,
        transactions rolled back), optionally stay down a while, and start it on the same port."""
        self._pg_ctl("stop", "-m", "fast", "-w")
        self._running = False
        if down_seconds:
            time.sleep(down_seconds)
        self._start_server()

    def stop(self) -> None:
        """Stop the server and remove the cluster. Safe to call twice (it is also run at exit)."""
        if self._removed:
            return
        if self._running:
            with contextlib.suppress(ClusterCommandFailed):
                self._pg_ctl("stop", "-m", "immediate", "-w")
            self._running = False
        shutil.rmtree(self.root, ignore_errors=True)
        self._removed = True

    # -- databases -------------------------------------------------------------------------

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str, template: str | None = None) -> str:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        self.execute(statement)
        return name

    def drop_database(self, name: str) -> None:
        # FORCE ends sessions a test left open (a detached worker, a leaked engine).
        self.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def execute(self, statement: sql.SQL | sql.Composed | str, dbname: str = "postgres") -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=dbname, autocommit=True
        ) as connection:
            connection.execute(statement)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    # -- internals -------------------------------------------------------------------------

    def _initdb(self) -> None:
        if self.as_root:
            os.chown(self.root, self._server_user.pw_uid, self._server_user.pw_gid)
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ]
        )
        self._run(["mkdir", "-m", "0700", str(self.socket_dir)])
        # Only TCP from 127.0.0.1; the socket (private dir) gets no entry at all.
        self._run(
            ["sh", "-c", f"printf 'host all all 127.0.0.1/32 trust\\n' > '{self.data_dir}/pg_hba.conf'"]
        )

    def _configure(self) -> None:
        settings = {
            **TEST_SETTINGS,
            **self._extra_settings,
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
        }
        text = "".join(f"{name} = {value}\n" for name, value in settings.items())
        # postgresql.auto.conf is read last, so these win over initdb's postgresql.conf.
        self._run(["sh", "-c", f"cat > '{self.data_dir}/postgresql.auto.conf'"], stdin=text)

    def _start_server(self) -> None:
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log_file))
        self._running = True

    def _pg_ctl(self, *arguments: str) -> None:
        self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *arguments])

    def _run(self, command: list[str], *, stdin: str | None = None) -> None:
        if self.as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        finished = subprocess.run(
            command,
            input=stdin,
            text=True,
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "LC_ALL": "C"},
            check=False,
        )
        if finished.returncode != 0:
            raise ClusterCommandFailed(
                f"{' '.join(command)} exited with {finished.returncode}: {finished.stderr.strip()}"
            )
