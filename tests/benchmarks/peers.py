"""tui-migrator against hand-written scripts doing the same work, on copies of the same data.

Run: .venv/bin/python -m tests.benchmarks.peers [--rows 100000] [--repeat 2] [--postgres | --db URL]
                                                [--only NAME[,NAME]] [--markdown]

Builds one table like the README's mapping example, ``records`` (id, organization_id and six
sensitive text columns: names, address, phone, email, notes; four organizations, 2 % NULLs per
column, deterministic pseudo-random text), once, into a template: an SQLite file (default), a
database of a throwaway PostgreSQL cluster (``--postgres``, fsync off), or a database created on
the server of ``--db URL`` (a PostgreSQL URL; the role needs CREATEDB; every database it creates
is named ``<that database>_peers<pid>_…`` and dropped at the end). ``tui-migrator init`` is run
once on the template, so the tool's tables and master key exist before anything is timed, and
the tool's package is compiled to bytecode, as an installed tool has it (compile_the_tool).

Then every contender runs ``--repeat`` times, round-robin, each time on a fresh copy (the copy is
not timed): tui-migrator's CLI (``start --batch-size 1000`` in the foreground, in the variants of
TOOL_VARIANTS — on SQLite also with its sweep put off, the run like for like with the scripts,
none of which sweeps the file; on PostgreSQL also detached, alone and with a second ``worker``
process joining it, with the issue's options and with each worker at ``--max-concurrency 1``),
and the three scripts of
tests/benchmarks/peer_scripts.py: ``same-work`` (sealed backups, tokens bound to their row by
associated data, HMAC digests, a verification pass), ``encrypt-only`` and ``naive`` (the SQLAlchemy
ORM and Fernet). Each is a separate process, timed from spawn to exit (a detached run: from spawning
``start`` to the exit of its last worker), with the peak RSS the kernel reports for it when it is
reaped, and the CPU-seconds the machine was busy meanwhile (every process's: the tool's worker
processes and, on PostgreSQL, the server's work included; from ``/proc/stat``, so nothing else
should run beside the benchmark). Every run is checked: the tool's JSON must say completed with
every row encrypted, a script must report every row, and sampled values of the template must no
longer be found in the copy; anything else stops the benchmark with the reason.

Prints the machine (date, cores, memory, load, Python, backend), a table of each contender's best
time, rows/s, peak RSS and CPU-seconds (``--markdown``: as a Markdown table), the ratios of the
tool's time to each script's and the speed-ups, the estimate each foreground tool run started
with against the time its migration took (its ``initialEstimateSeconds`` and ``elapsedSeconds``),
and where the best full tool run spent its time (the phase seconds of its ``report``).
``--only`` runs a subset (names: see ``--help``).

The database URL goes on the command lines of the processes it starts (as the brief for the
scripts asks): give a password in PGPASSWORD rather than in the URL.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import pwd
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

from tests.benchmarks import server_statements
from tests.benchmarks.server_statements import ServerStatements, Statement, statement_lines
from tests.support import bytecode
from tests.support.postgres_cluster import PostgresCluster, find_bin_dir, has_library
from tui_migrator.common.cores import usable_cores
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService

ROOT = Path(__file__).resolve().parents[2]
PEER_SCRIPTS = Path(__file__).with_name("peer_scripts.py")
USER = pwd.getpwuid(os.geteuid()).pw_name
SEED = 7
CHUNK = 10_000
BATCH_SIZE = 1000
ORGANIZATIONS = [f"org_{n}" for n in range(1, 5)]
SENSITIVE = ("first_name", "last_name", "address", "phone", "email", "notes")
NULL_SHARE = 0.02
CREATE_TABLE = (
    "CREATE TABLE records (id INTEGER PRIMARY KEY, organization_id TEXT NOT NULL, first_name TEXT, "
    "last_name TEXT, address TEXT, phone TEXT, email TEXT, notes TEXT)"
)
SCHEMA_TOML = """\
[[tables]]
name = "records"
category = "DEMOGRAPHICS"
primary_key = "id"
organization_column = "organization_id"
columns = ["first_name", "last_name", "address", "phone", "email", "notes"]
"""

# -- the contenders ------------------------------------------------------------------------


@dataclass(frozen=True)
class Contender:
    name: str  # for --only
    label: str  # in the table
    kind: str  # "tool" (foreground), "detached" (start --detach [+ a joined worker]), "script"
    arguments: tuple[str, ...]  # the start options, or the script's name
    workers: int = 1
    only_on: str | None = None  # "postgresql" or "sqlite": a contender of one backend only

    def runs_on(self, postgres: bool) -> bool:
        return self.only_on is None or self.only_on == ("postgresql" if postgres else "sqlite")


# The command: four batches in flight, two per worker process on two cores (the
# processes are one per core at most). On SQLite the same as the default 2 (a keyset pass keeps
# two batches per worker in flight anyway); on PostgreSQL four claimed batches instead of two.
FULL = ("--batch-size", str(BATCH_SIZE), "--max-concurrency", "4")
# The tool's variants: name (for --only), label, how it runs, its start options.
TOOL_VARIANTS = (
    Contender("tool",           "tool",                          "tool",     FULL),
    Contender("tool-c1",        "tool, concurrency 1",           "tool",     (*FULL[:3], "1")),
    Contender("tool-lean",      "tool, no backups/verification", "tool",     (*FULL, "--no-backups", "--skip-integrity-checks")),
    # Everything but the sweep, which no script does (it VACUUMs the file to rid it of the old
    # plaintext rows): the like-for-like run against the scripts. PostgreSQL never sweeps by
    # itself, so its "tool" is that already.
    Contender("tool-sweep-later", "tool, sweep put off",         "tool",     (*FULL, "--sweep-later"), only_on="sqlite"),
    Contender("tool-detached",  "tool, detached, one worker",    "detached", FULL, only_on="postgresql"),
    Contender("tool-2-workers", "tool, two workers",             "detached", FULL, workers=2, only_on="postgresql"),
    # One worker at --max-concurrency 4 keeps both cores busy, so on two cores a second one has
    # nothing to add; each at 1 (no worker processes: about one core each), what a second worker
    # adds where there are cores for it.
    Contender("tool-detached-c1",  "tool, detached, one worker, concurrency 1", "detached", (*FULL[:3], "1"), only_on="postgresql"),
    Contender("tool-2-workers-c1", "tool, two workers, concurrency 1",          "detached", (*FULL[:3], "1"), workers=2, only_on="postgresql"),
)  # fmt: skip
SCRIPTS = (
    Contender("same-work", "same-work script", "script", ("same-work",)),
    Contender("encrypt-only", "encrypt-only script", "script", ("encrypt-only",)),
    Contender("naive", "naive script (ORM + Fernet)", "script", ("naive",)),
)
CONTENDERS = TOOL_VARIANTS + SCRIPTS
# (line, numerator, denominator): the numerator's time over the denominator's.
RATIOS = (
    ("tool / same-work", "tool", "same-work"),
    ("tool / naive", "tool", "naive"),
    ("tool / encrypt-only", "tool", "encrypt-only"),
    ("tool, sweep put off / same-work", "tool-sweep-later", "same-work"),
    ("tool, sweep put off / naive", "tool-sweep-later", "naive"),
    ("max-concurrency 1 → 4 speed-up (no worker processes → two)", "tool-c1", "tool"),
    ("two workers speed-up (whole run)", "tool-detached", "tool-2-workers"),
    ("two workers speed-up, each at concurrency 1 (whole run)", "tool-detached-c1", "tool-2-workers-c1"),
)


class BenchmarkFailed(RuntimeError):
    """A run did not do its work: the benchmark stops rather than print a number for it."""


# -- the data ------------------------------------------------------------------------------

SYLLABLES = ["an", "bel", "car", "da", "el", "fen", "gar", "hil", "is", "jo", "ka", "lin", "mar",
             "no", "ol", "pe", "quin", "ra", "sel", "tor", "ul", "ven", "wil", "yor", "zel"]  # fmt: skip
STREETS = ["Maple", "Oak", "Linden", "Birch", "Station", "Church", "Mill", "Garden", "River",
           "Castle", "Park", "Hill", "Meadow"]  # fmt: skip
STREET_KINDS = ["Street", "Road", "Avenue", "Lane", "Way", "Close"]
CITIES = [
    "Springfield",
    "Riverton",
    "Lakeside",
    "Fairview",
    "Kingsbridge",
    "Millbrook",
    "Ashford",
    "Westhaven",
]
DOMAINS = ["example.org", "mail.example", "clinic.test", "post.example.net"]
WORDS = [
    "patient", "reports", "mild", "tremor", "right", "hand", "since", "last", "visit", "gait",
    "stable", "freezing", "episodes", "twice", "weekly", "levodopa", "dose", "adjusted", "sleep",
    "poor", "daytime", "fatigue", "mood", "low", "appetite", "normal", "fall", "in", "kitchen", "no",
    "injury", "follow", "up", "three", "months", "physiotherapy", "a", "week", "caregiver", "present",
    "blood", "pressure", "orthostatic", "drop", "dizziness", "on", "standing", "constipation",
    "improved", "handwriting", "smaller", "speech", "softer", "swallowing", "fine", "tolerates",
    "medication", "well", "nausea", "resolved",
]  # fmt: skip


def name(rng: random.Random) -> str:
    return "".join(rng.choices(SYLLABLES, k=3)).capitalize()[:10]


def generate(rows: int) -> Iterator[list[tuple[object, ...]]]:
    """The rows, ``CHUNK`` at a time: the same for the same ``rows`` on every run."""
    rng = random.Random(SEED)
    for start in range(1, rows + 1, CHUNK):
        chunk: list[tuple[object, ...]] = []
        for row_id in range(start, min(start + CHUNK, rows + 1)):
            first, last = name(rng), name(rng)
            values = [
                first,
                last,
                f"{rng.randint(1, 999)} {rng.choice(STREETS)} {rng.choice(STREET_KINDS)}, {rng.choice(CITIES)}",
                f"+49{rng.randint(10**8, 10**9 - 1)}",
                f"{first.lower()}.{last.lower()}@{rng.choice(DOMAINS)}",
                " ".join(rng.choices(WORDS, k=40))[: rng.randint(80, 200)].rstrip(),
            ]
            chunk.append(
                (
                    row_id,
                    rng.choice(ORGANIZATIONS),
                    *(None if rng.random() < NULL_SHARE else value for value in values),
                )
            )
        yield chunk


def sample_ids(rows: int) -> list[int]:
    return sorted({1, 2, rows // 3 or 1, rows // 2 or 1, rows - 1 or 1, rows})


# -- the backends --------------------------------------------------------------------------


@dataclass
class Copy:
    """One run's own database and data dir (holding the master key the template was set up with)."""

    name: str
    url: str
    data_dir: Path


def pg_connect(url: str, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    parts = make_url(url)
    options: dict[str, Any] = {
        "host": parts.host,
        "port": parts.port,
        "user": parts.username,
        "password": parts.password,
        "dbname": parts.database,
    }
    conninfo = make_conninfo(**{key: value for key, value in options.items() if value is not None})
    return psycopg.connect(conninfo, autocommit=autocommit)


class SqliteBackend:
    name = "sqlite"

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.template = scratch / "template"
        self.template_url = f"sqlite:///{self.template / 'records.db'}"
        self.template_data = self.template / "data"

    def describe(self) -> str:
        connection = sqlite3.connect(self.template / "records.db")
        try:
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            connection.close()
        # init may switch the file to WAL; the scripts then run in that mode too.
        return f"SQLite {sqlite3.sqlite_version}, journal_mode {mode} (a file in {self.scratch})"

    def build(self, rows: int) -> None:
        self.template.mkdir()
        connection = sqlite3.connect(self.template / "records.db")
        connection.execute(CREATE_TABLE)
        for chunk in generate(rows):
            connection.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", chunk)
        connection.commit()
        connection.close()

    def prepare_empty_template(self) -> str:
        """For a template filled by the caller instead of build(): its URL, the file not yet made."""
        self.template.mkdir()
        return self.template_url

    def sample(self, url: str, ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
        connection = sqlite3.connect(url.split(":///", 1)[1])
        try:
            marks = ", ".join("?" for _ in ids)
            query = f"SELECT id, {', '.join(SENSITIVE)} FROM records WHERE id IN ({marks})"
            return {row[0]: row[1:] for row in connection.execute(query, list(ids))}
        finally:
            connection.close()

    def copy(self, name: str) -> Copy:
        root = self.scratch / name
        shutil.copytree(self.template, root)
        return Copy(name, f"sqlite:///{root / 'records.db'}", root / "data")

    def discard(self, copy: Copy) -> None:
        shutil.rmtree(self.scratch / copy.name, ignore_errors=True)

    def close(self) -> None:
        pass


class PostgresBackend:
    name = "postgresql"

    def __init__(self, url: str, scratch: Path, note: str) -> None:
        self.url = url
        self.scratch = scratch
        self.note = note
        base = make_url(url).database or "postgres"
        self.set_prefix(f"{base[:30]}_peers{os.getpid()}")
        self.template_data = scratch / "template" / "data"
        self.created: list[str] = []
        # The server's time per statement of the tool's runs, where the server can tell.
        self.statements = ServerStatements(lambda: pg_connect(url, autocommit=True))
        with pg_connect(url) as connection:
            self.version = str(connection.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]

    def set_prefix(self, prefix: str) -> None:
        """Name this backend's databases ``<prefix>_…``: two backends on one server apart."""
        self.prefix = prefix
        self.template_name = f"{prefix}_template"
        self.template_url = self.url_of(self.template_name)

    def prepare_empty_template(self) -> str:
        """For a template filled by the caller instead of build(): its URL, the database empty."""
        self._create(self.template_name)
        self.template_data.parent.mkdir()
        return self.template_url

    def url_of(self, database: str) -> str:
        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def describe(self) -> str:
        return f"PostgreSQL {self.version} ({self.note})"

    def _admin(self, statement: sql.Composed) -> None:
        with pg_connect(self.url, autocommit=True) as connection:
            connection.execute(statement)

    def _create(self, name: str, template: str | None = None) -> None:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        self._admin(statement)
        self.created.append(name)

    def _drop(self, name: str) -> None:
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if name in self.created:
            self.created.remove(name)

    def build(self, rows: int) -> None:
        self._create(self.template_name)
        self.template_data.parent.mkdir()
        with pg_connect(self.template_url) as connection:
            connection.execute(CREATE_TABLE)
            with connection.cursor() as cursor, cursor.copy("COPY records FROM STDIN") as copy:
                for chunk in generate(rows):
                    for row in chunk:
                        copy.write_row(row)
        # As a table in use is: vacuumed (its rows' hint bits set, its visibility map made) and
        # analysed, its pages written out. Freshly filled, every contender's first pass set the
        # hint bits of every page and left the checkpointer to write them out meanwhile: the
        # tool's run took a second longer than on the vacuumed table (2026-12-06, 100,000 rows),
        # which its estimate, sampling a thousand rows, did not foresee.
        with pg_connect(self.template_url, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE records")
            superuser = connection.execute(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            if superuser and superuser[0]:
                connection.execute("CHECKPOINT")

    def sample(self, url: str, ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
        with pg_connect(url) as connection:
            query = f"SELECT id, {', '.join(SENSITIVE)} FROM records WHERE id = ANY(%s)"
            return {row[0]: row[1:] for row in connection.execute(query, (list(ids),))}

    def copy(self, name: str) -> Copy:
        database = f"{self.prefix}_{name}"
        self._create(database, template=self.template_name)
        shutil.copytree(self.template_data, self.scratch / name / "data")
        return Copy(name, self.url_of(database), self.scratch / name / "data")

    def discard(self, copy: Copy) -> None:
        self._drop(make_url(copy.url).database or "")
        shutil.rmtree(self.scratch / copy.name, ignore_errors=True)

    def close(self) -> None:
        for name in list(self.created):
            self._drop(name)


Backend = SqliteBackend | PostgresBackend

# -- running and measuring one process -----------------------------------------------------

# Every timed process is started and reaped by this small process, not by the benchmark itself.
# The peak RSS the kernel reports when a process is reaped (ru_maxrss) also counts the memory of
# the process it was forked from, up to its exec: forked from the benchmark (SQLAlchemy, psycopg
# and the tool loaded) every child would show at least the benchmark's own size. The launcher is
# a bare interpreter (-I -S, standard library only), smaller than any child. It is also a child
# subreaper (Linux), so a detached worker, whose parent `start` exits at once, becomes its child
# and is reaped, with its exit time and peak RSS, there too. It reads one JSON request a line
# and answers each with one JSON line.
LAUNCHER = r"""
import ctypes, json, os, sys, time
os.chdir(sys.argv[1])
try:
    subreaper = ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
except Exception:
    subreaper = False
print(json.dumps({"pid": os.getpid(), "subreaper": subreaper}), flush=True)
for line in sys.stdin:
    request = json.loads(line)
    try:
        if request["op"] == "spawn":
            write = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, request["stdout"], write, 0o600),
                (os.POSIX_SPAWN_OPEN, 2, request["stderr"], write, 0o600),
            ]
            started = time.perf_counter()
            pid = os.posix_spawn(request["argv"][0], request["argv"], request["env"], file_actions=actions)
            reply = {"pid": pid, "started": started}
        else:
            _, status, usage = os.wait4(request["pid"], 0)
            reply = {"ended": time.perf_counter(), "code": os.waitstatus_to_exitcode(status),
                     "maxrss": usage.ru_maxrss}
    except Exception as error:
        reply = {"error": repr(error)}
    print(json.dumps(reply), flush=True)
"""


def child_environment() -> dict[str, str]:
    """This environment without TUI_MIGRATOR_* variables: only the options given reach the tool."""
    return {key: value for key, value in os.environ.items() if not key.startswith("TUI_MIGRATOR_")}


def compile_the_tool() -> str:
    """Compile the tool's modules to bytecode before anything is timed, as installing it does
    (tests/support/bytecode.py); what was done, for the machine lines. Without it, where
    PYTHONDONTWRITEBYTECODE is set, every process the tool starts (itself, its fork server)
    compiled its modules afresh: its imports took 1.0 s instead of 0.5 (2026-12-05). The
    scripts' modules come from installed packages, compiled."""
    bytecode.compile_the_tool()
    return "the tool's bytecode compiled before timing, as an installation does"


def sync_latency_line(directory: Path, samples: int = 50) -> str:
    """How long this disk takes to make a small write durable: the median of ``samples`` 4 KiB
    writes each followed by fdatasync, in ``directory`` (where the copies are). Every synced
    commit pays about that; the contenders differ in how many they make (counted with
    ``strace -f -c -e trace=fdatasync,fsync`` on 2026-12-05, 100,000 rows: the naive script
    1,091, one per page of 100 rows, the tool about 200, the same-work script 178), so on a
    disk that syncs slowly the naive script slows the most."""
    sync = getattr(os, "fdatasync", os.fsync)
    durations = []
    probe = directory / "sync-probe"
    descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(samples):
            os.write(descriptor, b"\0" * 4096)
            started = time.perf_counter()
            sync(descriptor)
            durations.append(time.perf_counter() - started)
    finally:
        os.close(descriptor)
        probe.unlink()
    durations.sort()
    return (
        f"disk: a 4 KiB write made durable (fdatasync) in {durations[len(durations) // 2] * 1000:.2f} ms "
        f"(median of {samples}; slowest {durations[-1] * 1000:.2f} ms)"
    )


def machine_busy_seconds() -> float | None:
    """CPU-seconds every core of the machine has spent busy since it started (user, nice, system,
    interrupts; not idle, I/O wait or time taken by the hypervisor), from ``/proc/stat``; None
    where there is none. The difference across a run is what all its processes used: the worker
    processes of a run whose parent never waits for them, and a database server's work too."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(value) for value in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def cpu_between(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def rss_mib(maxrss: int) -> float:
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    return maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


@dataclass
class Child:
    command: list[str]
    pid: int
    started: float  # time.perf_counter() (CLOCK_MONOTONIC, the same in every process) at spawn
    out: Path
    err: Path
    busy_at_spawn: float | None = None  # machine_busy_seconds() just before it was spawned


@dataclass
class Finished:
    command: list[str]
    code: int
    seconds: float  # from spawn to exit
    rss_mib: float
    stdout: str
    stderr: str
    ended: float = 0.0
    cpu_seconds: float | None = None  # the machine's busy CPU-seconds from spawn to exit

    def json(self) -> dict[str, Any]:
        try:
            parsed: dict[str, Any] = json.loads(self.stdout)
        except ValueError:
            raise BenchmarkFailed(self.explain("did not print one JSON object")) from None
        return parsed

    def explain(self, problem: str) -> str:
        return (
            f"{' '.join(self.command[1:4])} … {problem} (exit code {self.code})\n"
            f"stdout: {self.stdout[-2000:]}\nstderr: {self.stderr[-2000:]}"
        )


class Launcher:
    """The benchmark's side of LAUNCHER."""

    def __init__(self, scratch: Path) -> None:
        self.outputs = scratch / "outputs"
        self.outputs.mkdir()
        self.count = 0
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", LAUNCHER, str(ROOT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = self._read()
        self.pid, self.subreaper = int(hello["pid"]), bool(hello["subreaper"])

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise BenchmarkFailed(f"the launcher exited ({self.process.wait()})")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise BenchmarkFailed(f"the launcher could not do it: {reply['error']}")
        return reply

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._read()

    def spawn(self, command: list[str]) -> Child:
        self.count += 1
        out, err = self.outputs / f"{self.count}.out", self.outputs / f"{self.count}.err"
        busy = machine_busy_seconds()
        reply = self._ask(
            {
                "op": "spawn",
                "argv": command,
                "env": child_environment(),
                "stdout": str(out),
                "stderr": str(err),
            }
        )
        return Child(command, int(reply["pid"]), float(reply["started"]), out, err, busy)

    def reap(self, pid: int) -> tuple[float, int, float]:
        """Wait for ``pid`` (a child of the launcher) to exit: (when, exit code, peak RSS MiB)."""
        reply = self._ask({"op": "wait", "pid": pid})
        return float(reply["ended"]), int(reply["code"]), rss_mib(int(reply["maxrss"]))

    def finish(self, child: Child) -> Finished:
        ended, code, rss = self.reap(child.pid)
        cpu = cpu_between(child.busy_at_spawn, machine_busy_seconds())
        stdout, stderr = (path.read_text(errors="replace") for path in (child.out, child.err))
        child.out.unlink()
        child.err.unlink()
        return Finished(child.command, code, ended - child.started, rss, stdout, stderr, ended, cpu)

    def adopted_worker(self, migration_id: str) -> int | None:
        """The process id of the detached worker of ``migration_id``, if it is now the
        launcher's child (its parent, ``start``, has exited)."""
        if not self.subreaper:
            return None
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                arguments = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.pid and b"worker" in arguments and migration_id.encode() in arguments:
                return int(entry.name)
        return None

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


def run_untimed(command: list[str]) -> Finished:
    """A command around the measured runs (init, report, status): not timed."""
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, env=child_environment(), check=False
    )
    return Finished(command, done.returncode, 0.0, 0.0, done.stdout, done.stderr)


def tool_command(copy: Copy, schema: Path, *arguments: str) -> list[str]:
    return [
        sys.executable, "-m", "tui_migrator", "--db", copy.url, "--data-dir", str(copy.data_dir),
        "--schema", str(schema), "--json", *arguments,
    ]  # fmt: skip


def tool_json(finished: Finished, what: str) -> dict[str, Any]:
    if finished.code != 0:
        raise BenchmarkFailed(finished.explain(f"{what} failed"))
    data: dict[str, Any] = finished.json()["data"]
    return data


def check_completed(data: dict[str, Any], rows: int, finished: Finished) -> None:
    encrypted = data.get("progress", {}).get("encryptedRecords")
    if data.get("status") != "completed" or encrypted != rows:
        raise BenchmarkFailed(
            finished.explain(f"ended {data.get('status')!r} with {encrypted} of {rows:,} rows encrypted")
        )


# -- one run of one contender --------------------------------------------------------------


@dataclass
class Measured:
    seconds: float
    rss_mib: float
    notes: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None  # the tool's `report --json` data
    # The tool's own estimate before it began (start's calibration) and the migration's time.
    estimate: tuple[float, float] | None = None
    cpu_seconds: float | None = None  # the machine's busy CPU-seconds during the run
    # PostgreSQL: what the server spent on each statement of the run (server_statements).
    server_statements: list[Statement] | None = None

    def estimate_error(self) -> str:
        if self.estimate is None:
            return ""
        estimated, took = self.estimate
        error = f" ({100 * (estimated - took) / took:+.0f} %)" if took > 0 else ""
        return f"estimated {estimated:.1f} s for a {took:.1f} s migration{error}"


def run_tool(
    launcher: Launcher,
    copy: Copy,
    schema: Path,
    contender: Contender,
    rows: int,
    statements: ServerStatements | None = None,
) -> Measured:
    if statements is not None:
        statements.reset()
    finished = launcher.finish(
        launcher.spawn(tool_command(copy, schema, "start", *contender.arguments, "--yes"))
    )
    # Read before the report below adds its own.
    per_statement = None if statements is None else statements.of_database(make_url(copy.url).database or "")
    data = tool_json(finished, "start")
    check_completed(data, rows, finished)
    # Not timed: the phase seconds of this run, for "where the time goes".
    report = tool_json(run_untimed(tool_command(copy, schema, "report", data["migrationId"])), "report")
    timing = data.get("timing", {})
    estimate = None
    if timing.get("initialEstimateSeconds") is not None and timing.get("elapsedSeconds") is not None:
        estimate = (float(timing["initialEstimateSeconds"]), float(timing["elapsedSeconds"]))
    return Measured(
        finished.seconds,
        finished.rss_mib,
        report=report,
        estimate=estimate,
        cpu_seconds=finished.cpu_seconds,
        server_statements=per_statement,
    )


def run_detached(launcher: Launcher, copy: Copy, schema: Path, contender: Contender, rows: int) -> Measured:
    """``start --detach``, and with two workers a ``worker ID`` process joining it as soon as the
    detached worker has claimed the migration; timed from spawning start to the last exit."""
    settings = Settings.resolve(
        {"data_dir": copy.data_dir, "database_url": copy.url, "schema_path": schema}, environ={}
    )
    # Opened before the clock starts; used to see when the detached worker is up.
    with MigratorService.open(settings, user=USER) as service:
        start = launcher.spawn(tool_command(copy, schema, "start", *contender.arguments, "--detach", "--yes"))
        launched = launcher.finish(start)
        migration_id = str(tool_json(launched, "start --detach")["migrationId"])
        owner = launcher.adopted_worker(migration_id)
        joined: Child | None = None
        if contender.workers == 2:
            # `start --detach` returned once its worker had claimed the migration: a `worker ID`
            # started now joins it (before the claim it would have run it itself).
            if not service.status(migration_id).worker_alive:
                raise BenchmarkFailed(f"the detached worker of {migration_id} is not running it")
            joined = launcher.spawn(tool_command(copy, schema, "worker", migration_id))
        peaks = {"start": launched.rss_mib}
        ends = [launched.ended]
        if owner is not None:
            ended, code, peaks["detached worker"] = launcher.reap(owner)
            ends.append(ended)
            if code != 0:
                raise BenchmarkFailed(f"the detached worker of {migration_id} exited with {code}")
        else:
            # Not the launcher's child (no subreaper): watch the migration; its RSS is unknown.
            while service.status(migration_id).stored_status.is_live:
                time.sleep(0.05)
            ends.append(time.perf_counter())
        notes = []
        if joined is not None:
            helper = launcher.finish(joined)
            peaks["joined worker"] = helper.rss_mib
            ends.append(helper.ended)
            if helper.code == 2 and "is completed" in str(helper.json().get("error", "")):
                # A small table can be finished before the second worker is in: it joins nothing.
                notes.append(f"the joined worker came too late: the migration was completed ({rows:,} rows)")
            else:
                joined_report = tool_json(helper, "worker")
                took = joined_report.get("rowsProcessed", 0)
                windows = ", ".join(
                    f"{step} {count:,}" for step, count in joined_report.get("windowRowsByStep", {}).items()
                )
                notes.append(
                    f"the joined worker took {took:,} of {rows:,} rows"
                    + (f" (and windows of rows: {windows})" if windows else "")
                )
                notes += [
                    f"the joined worker warned: {warning}" for warning in joined_report.get("warnings", [])
                ]
        # From spawning start to the last exit, as the time.
        cpu = cpu_between(start.busy_at_spawn, machine_busy_seconds())
    # Checked once it is over (not timed), with `status ID --json`.
    status_run = run_untimed(tool_command(copy, schema, "status", migration_id))
    check_completed(tool_json(status_run, "status"), rows, status_run)
    # The detached worker's figure is at least start's: it counts its parent up to its exec.
    notes.append("peak RSS " + ", ".join(f"{who} {mib:.0f} MiB" for who, mib in peaks.items()))
    return Measured(max(ends) - start.started, max(peaks.values()), notes=notes, cpu_seconds=cpu)


def run_script(launcher: Launcher, copy: Copy, contender: Contender, rows: int) -> Measured:
    finished = launcher.finish(
        launcher.spawn([sys.executable, str(PEER_SCRIPTS), *contender.arguments, copy.url])
    )
    if finished.code != 0:
        raise BenchmarkFailed(finished.explain(f"the {contender.label} failed"))
    result = finished.json()
    if result.get("rows") != rows:
        raise BenchmarkFailed(finished.explain(f"processed {result.get('rows')} of {rows:,} rows"))
    return Measured(finished.seconds, finished.rss_mib, cpu_seconds=finished.cpu_seconds)


def check_no_plaintext(
    backend: Backend, copy: Copy, before: dict[int, tuple[Any, ...]], contender: Contender
) -> None:
    """The sampled rows' original values are gone from the copy (not timed)."""
    after = backend.sample(copy.url, list(before))
    for row_id, originals in before.items():
        for column, original, now in zip(SENSITIVE, originals, after[row_id], strict=True):
            if original is not None and now == original:
                raise BenchmarkFailed(
                    f"{contender.label}: records.{column} of row {row_id} is still plaintext"
                )


# -- the whole benchmark -------------------------------------------------------------------


@dataclass
class Results:
    runs: dict[str, list[Measured]] = field(default_factory=dict)
    # A process that only starts the interpreter and imports the tool's CLI (best of three).
    import_seconds: float | None = None

    def best(self, name: str) -> Measured:
        return min(self.runs[name], key=lambda run: run.seconds)


def machine_lines(backend: Backend, rows: int, repeat: int) -> list[str]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"{rows:,} rows in one table (4 organizations, 6 sensitive text columns), best of {repeat}",
        f"date {now}; {usable_cores()} of {os.cpu_count()} CPUs usable; {memory:.1f} GiB memory; load average {load}",
        f"Python {platform.python_version()} ({sys.executable}); backend {backend.describe()}",
    ]


def table_lines(chosen: Sequence[Contender], results: Results, rows: int, markdown: bool) -> list[str]:
    header = ("contender", "seconds", "rows/s", "peak RSS MiB", "CPU s", "all runs (s)")
    body = []
    for contender in chosen:
        best = results.best(contender.name)
        body.append(
            (
                contender.label,
                f"{best.seconds:.2f}",
                f"{rows / best.seconds:,.0f}",
                f"{best.rss_mib:.0f}",
                "n/a" if best.cpu_seconds is None else f"{best.cpu_seconds:.1f}",
                " ".join(f"{run.seconds:.2f}" for run in results.runs[contender.name]),
            )
        )
    if markdown:
        return [
            "| " + " | ".join(header) + " |",
            "|---|" + "---:|" * (len(header) - 1),
            *("| " + " | ".join(line) + " |" for line in body),
        ]
    width = max(len(header[0]), *(len(line[0]) for line in body))
    return [
        f"{label:<{width}}  {seconds:>8}  {speed:>9}  {rss:>12}  {cpu:>6}  {runs}"
        for label, seconds, speed, rss, cpu, runs in (header, *body)
    ]


def ratio_lines(results: Results) -> list[str]:
    lines = []
    for label, numerator, denominator in RATIOS:
        if numerator in results.runs and denominator in results.runs:
            value = results.best(numerator).seconds / results.best(denominator).seconds
            lines.append(f"{label}: {value:.2f}")
    return lines


def estimate_lines(chosen: Sequence[Contender], results: Results) -> list[str]:
    lines = []
    for contender in chosen:
        errors = [run.estimate_error() for run in results.runs.get(contender.name, []) if run.estimate]
        if errors:
            lines.append(f"  {contender.label}: " + "; ".join(errors))
    return lines


def phase_lines(best: Measured, import_seconds: float | None) -> list[str]:
    if best.report is None:
        return []
    timing = best.report["timing"]
    phases: dict[str, float] = timing.get("phaseSeconds") or {}
    elapsed = float(timing["elapsedSeconds"])
    sweep = ((best.report.get("sweep") or {}).get("result") or {}).get("durationSeconds")
    lines = [f"where the time goes (best 'tool' run: {best.seconds:.2f} s from spawn to exit):"]
    lines += [f"  {phase:<38} {seconds:8.2f} s" for phase, seconds in phases.items()]
    lines.append(f"  {'(migration, between phases)':<38} {elapsed - sum(phases.values()):8.2f} s")
    if sweep is not None:
        lines.append(f"  {'sweep (after completion)':<38} {float(sweep):8.2f} s")
    rest = best.seconds - elapsed - float(sweep or 0)
    lines.append(f"  {'start-up, opening, checks, exit':<38} {rest:8.2f} s")
    if import_seconds is not None:
        lines.append(
            f"    {'of which starting Python + imports':<36} {import_seconds:8.2f} s (a process doing only that)"
        )
    return lines


def run_all(
    backend: Backend, chosen: Sequence[Contender], rows: int, repeat: int, schema: Path, scratch: Path
) -> Results:
    before = backend.sample(backend.template_url, sample_ids(rows))
    statements = backend.statements if isinstance(backend, PostgresBackend) else None
    if statements is not None and not statements.available:
        statements = None
    results = Results({contender.name: [] for contender in chosen})
    launcher = Launcher(scratch)
    try:
        # Round-robin, so a change in the machine's load spreads over every contender.
        for round_number in range(1, repeat + 1):
            for contender in chosen:
                copy = backend.copy(f"{contender.name}_{round_number}")
                try:
                    if contender.kind == "tool":
                        measured = run_tool(launcher, copy, schema, contender, rows, statements)
                    elif contender.kind == "detached":
                        measured = run_detached(launcher, copy, schema, contender, rows)
                    else:
                        measured = run_script(launcher, copy, contender, rows)
                    check_no_plaintext(backend, copy, before, contender)
                finally:
                    backend.discard(copy)
                results.runs[contender.name].append(measured)
                estimate = measured.estimate_error()
                cpu = "" if measured.cpu_seconds is None else f", {measured.cpu_seconds:.1f} CPU-s"
                print(
                    f"  run {round_number}/{repeat} {contender.label}: {measured.seconds:.2f} s, "
                    f"{measured.rss_mib:.0f} MiB{cpu}" + (f"; {estimate}" if estimate else ""),
                    file=sys.stderr,
                    flush=True,
                )
        if any(contender.kind != "script" for contender in chosen):
            results.import_seconds = min(
                launcher.finish(
                    launcher.spawn([sys.executable, "-c", "import tui_migrator.cli.main"])
                ).seconds
                for _ in range(3)
            )
    finally:
        launcher.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each contender; the best counts")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--postgres", action="store_true", help="on a throwaway PostgreSQL cluster")
    where.add_argument("--db", metavar="URL", help="on this PostgreSQL server (postgresql+psycopg://…)")
    parser.add_argument(
        "--only",
        metavar="NAME[,NAME]",
        help="run only these contenders: " + ", ".join(contender.name for contender in CONTENDERS),
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as a Markdown table")
    args = parser.parse_args()
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be at least 1")
    on_postgres = bool(args.postgres or args.db)
    if args.db and not make_url(args.db).get_backend_name().startswith("postgresql"):
        parser.error("--db takes a PostgreSQL URL (the SQLite run needs no --db)")
    chosen = [c for c in CONTENDERS if c.runs_on(on_postgres)]
    if args.only:
        names = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(names) - {c.name for c in chosen})
        if unknown or not names:
            elsewhere = ", ".join(c.name for c in CONTENDERS if not c.runs_on(on_postgres))
            other = "SQLite" if on_postgres else "PostgreSQL, with --postgres or --db"
            parser.error(
                f"--only: unknown here: {', '.join(unknown)}; choose from "
                f"{', '.join(c.name for c in chosen)} ({elsewhere}: {other} only)"
            )
        chosen = [c for c in chosen if c.name in names]

    scratch = Path(tempfile.mkdtemp(prefix="tui-migrator-peers-"))
    cluster: PostgresCluster | None = None
    backend: Backend | None = None
    try:
        if args.postgres:
            # With the server's statement statistics loaded, where its contrib modules are here.
            bin_dir = find_bin_dir()
            loaded = bin_dir is not None and has_library(bin_dir, server_statements.MODULE)
            cluster = PostgresCluster(settings=server_statements.SETTINGS if loaded else None).start()
            backend = PostgresBackend(cluster.url("postgres"), scratch, "throwaway cluster, fsync off")
        elif args.db:
            backend = PostgresBackend(args.db, scratch, "the server of --db")
        else:
            backend = SqliteBackend(scratch)
        schema = scratch / "schema.toml"
        schema.write_text(SCHEMA_TOML)
        print(f"building {args.rows:,} rows into the template …", file=sys.stderr, flush=True)
        started = time.perf_counter()
        compiled = compile_the_tool()
        backend.build(args.rows)
        init = run_untimed(
            tool_command(Copy("template", backend.template_url, backend.template_data), schema, "init")
        )
        tool_json(init, "init")
        print(f"  built and set up in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        results = run_all(backend, chosen, args.rows, args.repeat, schema, scratch)
        lines = [*machine_lines(backend, args.rows, args.repeat), sync_latency_line(scratch), compiled]
    except BenchmarkFailed as failure:
        print(f"benchmark failed: {failure}", file=sys.stderr)
        return 1
    finally:
        if backend is not None:
            backend.close()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    print("\n".join(lines))
    print()
    print("\n".join(table_lines(chosen, results, args.rows, args.markdown)))
    notes = [f"{c.label}: {note}" for c in chosen for note in results.best(c.name).notes]
    if notes:
        print("\n".join(notes))
    ratios = ratio_lines(results)
    if ratios:
        print()
        print("ratios of best times (tool / script > 1: the tool takes longer; speed-up > 1: faster):")
        print("\n".join(ratios))
    estimates = estimate_lines(chosen, results)
    if estimates:
        print()
        print("the tool's estimate before each run (start's calibration) against the migration's time:")
        print("\n".join(estimates))
    if "tool" in results.runs:
        print()
        print("\n".join(phase_lines(results.best("tool"), results.import_seconds)))
        per_statement = results.best("tool").server_statements
        if per_statement is not None:
            print()
            print("\n".join(statement_lines(per_statement, "best 'tool' run")))
        elif isinstance(backend, PostgresBackend) and backend.statements.missing:
            print()
            print(f"where the server's time goes: not measured ({backend.statements.missing})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
