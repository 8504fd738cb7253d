"""Identity is the effective uid's passwd name, or ``uid:<n>`` when it has none; never $USER.

tests/conftest.py replaces ``operators.current_os_user`` for every test (in-process runs act as
ADMIN); the real function is taken here at import time, before any fixture runs.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import tui_migrator
from tests.support.cli import where
from tests.support.databases import ADMIN, make_settings
from tui_migrator.cli.main import main
from tui_migrator.common.errors import BadInput, ConfigError, PermissionDenied
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import operators
from tui_migrator.storage.operators import Role, check_username
from tui_migrator.storage.operators import current_os_user as real_current_os_user

# The variables getpass.getuser() reads, all claiming root.
ROOT_CLAIMS = {"USER": "root", "LOGNAME": "root", "LNAME": "root", "USERNAME": "root"}


def _no_passwd_entry(uid: int) -> pwd.struct_passwd:
    raise KeyError(f"getpwuid(): uid not found: {uid}")


@pytest.fixture
def unnamed_uid(monkeypatch: pytest.MonkeyPatch) -> str:
    """This process's uid has no passwd entry, and the environment says it is root."""
    monkeypatch.setattr(pwd, "getpwuid", _no_passwd_entry)
    for name, value in ROOT_CLAIMS.items():
        monkeypatch.setenv(name, value)
    return f"uid:{os.geteuid()}"


# -- current_os_user --------------------------------------------------------------------------


def test_a_uid_without_a_passwd_entry_is_uid_n_whatever_user_says(unnamed_uid: str) -> None:
    assert real_current_os_user() == unnamed_uid == f"uid:{os.geteuid()}"


def test_a_uid_with_a_passwd_entry_is_its_name_whatever_user_says(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ROOT_CLAIMS.items():
        monkeypatch.setenv(name, value)
    looked_up: list[int] = []

    def entry(uid: int) -> pwd.struct_passwd:
        looked_up.append(uid)
        return pwd.struct_passwd(("svc-migrate", "x", uid, uid, "", "/nonexistent", "/bin/false"))

    monkeypatch.setattr(pwd, "getpwuid", entry)
    assert real_current_os_user() == "svc-migrate"
    assert looked_up == [os.geteuid()]


def test_without_the_pwd_module_it_is_still_the_uid_not_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in ROOT_CLAIMS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(sys.modules, "pwd", None)  # makes `import pwd` raise ImportError
    assert real_current_os_user() == f"uid:{os.geteuid()}"


def test_a_platform_without_uids_is_refused_rather_than_trusting_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("USER", "root")
    monkeypatch.delattr(os, "geteuid")
    with pytest.raises(ConfigError, match="Cannot tell which operating-system user") as refused:
        real_current_os_user()
    assert refused.value.hint is not None and "effective uid" in refused.value.hint


# -- check_username -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["uid:54321", "uid:0", "uid:4294967295", "alice", "svc.migrate-1", "a@b"])
def test_login_names_and_uid_n_are_valid_user_names(name: str) -> None:
    assert check_username(name) == name


@pytest.mark.parametrize(
    "name", ["uid:", "uid:054321", "uid:-1", "uid:+5", "uid:12a", "uid:4294967296", "uid:1\n", "uid: 1"]
)
def test_a_malformed_uid_name_says_how_to_write_it(name: str) -> None:
    with pytest.raises(BadInput, match="after 'uid:' must come a uid in decimal") as refused:
        check_username(name)
    assert (
        refused.value.hint is not None and "id -u" in refused.value.hint and "uid:54321" in refused.value.hint
    )


@pytest.mark.parametrize("name", ["UID:1", "gid:1", "a:b", "alice\n", "bad name", ""])
def test_other_names_with_a_colon_or_space_stay_invalid(name: str) -> None:
    with pytest.raises(BadInput, match="not a valid operating-system user name") as refused:
        check_username(name)
    assert refused.value.hint is not None and "uid:<n>" in refused.value.hint


# -- in-process: the unnamed uid is who acts -------------------------------------------------------


def test_cli_under_an_unnamed_uid_claiming_root_is_refused_as_uid_n(
    service: MigratorService,
    settings: Settings,
    unnamed_uid: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The reported bug, in-process: USER=root once made this grant succeed, audited as root."""
    monkeypatch.setattr(operators, "current_os_user", real_current_os_user)
    code = main(["operators", "grant", "mallory", "super_admin", "--json", *where(settings)])
    refusal = json.loads(capsys.readouterr().out)
    assert code == 3 and refusal["errorCode"] == "permission_denied"
    assert f"'{unnamed_uid}' has no role" in refusal["error"]
    assert f"operators grant {unnamed_uid} viewer" in refusal["hint"]
    assert "mallory" not in {o.username for o in service.list_operators()}
    latest = service.audit_entries(limit=1).entries[0]
    assert (latest.operation, latest.user_id, latest.success) == ("permission_denied", unnamed_uid, False)


def test_a_super_admin_can_grant_a_uid_n_a_role_and_it_then_acts_with_it(
    service: MigratorService, settings: Settings
) -> None:
    granted = service.grant("uid:54321", "viewer")
    assert (granted.username, granted.role) == ("uid:54321", Role.VIEWER)
    with MigratorService.open(settings, user="uid:54321") as unnamed:
        assert unnamed.role() is Role.VIEWER
        assert unnamed.audit_entries(limit=1).total_entries >= 2
        with pytest.raises(PermissionDenied, match="role viewer"):
            unnamed.grant("mallory", "super_admin")
    assert service.revoke("uid:54321")


# -- a real process under a uid with no passwd entry ------------------------------------------------


def _free_uid(start: int = 54321) -> int:
    """The first uid from ``start`` on with no passwd entry."""
    for uid in range(start, start + 1000):
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
    pytest.skip(f"every uid from {start} to {start + 999} has a passwd entry; no unnamed uid to run as")


def _closed_to_others(path: Path) -> Path | None:
    """The first directory on the way to ``path`` that other users may not enter, if any."""
    for directory in [*reversed(path.parents), path] if path.is_dir() else reversed(path.parents):
        if not directory.stat().st_mode & 0o001:
            return directory
    return None


def _hand_over(root: Path, uid: int) -> None:
    """Give ``root`` and everything in it to ``uid`` (files the test's own service wrote are root's)."""
    for directory, subdirectories, files in os.walk(root):
        for name in [directory, *(os.path.join(directory, n) for n in subdirectories + files)]:
            os.chown(name, uid, uid, follow_symlinks=False)


@pytest.fixture
def shared_workspace(workspace: Path) -> Iterator[Path]:
    """A copy of the test's workspace in a directory any user may enter: tmp_path lies under
    /tmp/pytest-of-root/, which only root may enter."""
    root = Path(tempfile.mkdtemp(prefix="tm-identity-", dir="/tmp"))
    try:
        root.chmod(0o755)
        shutil.copy2(workspace / "parkml.db", root / "parkml.db")
        shutil.copytree(workspace / "data", root / "data")
        (root / "home").mkdir()
        yield root
    finally:
        shutil.rmtree(root)


# Installed packages the tool does not need at run time, left out of the copy below.
_DEV_ONLY = ("mypy", "mypyc", "hypothesis", "pip", "_pytest", "pytest", "grimp", "importlinter", "ruff")


@dataclass(frozen=True)
class Interpreter:
    """A Python another uid can run, with the tool importable."""

    executable: str
    path: str | None = None  # PYTHONPATH, where the tool and its packages were copied


def _reachable(path: Path) -> bool:
    return _closed_to_others(path) is None


@pytest.fixture(scope="module")
def interpreter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Interpreter]:
    """This suite's own Python where every user may reach it; otherwise (a pyenv under /root,
    say) the system's Python of the same version, given a copy of the tool and its installed
    packages in a directory every user may enter."""
    own = Path(sys.executable)
    if all(_reachable(p) for p in (own, own.resolve(), Path(sys.prefix), Path(sys.base_prefix))) and all(
        _reachable(Path(entry)) for entry in sys.path if entry and Path(entry).exists()
    ):
        yield Interpreter(sys.executable)
        return
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    if system is None or not _reachable(Path(system).resolve()):
        pytest.skip(f"no {version} that another uid may run: this suite's is {sys.executable}")
    copy = Path(tempfile.mkdtemp(prefix="tm-identity-python-", dir="/tmp"))
    try:
        copy.chmod(0o755)
        packages = Path(sysconfig.get_paths()["purelib"])
        shutil.copytree(
            packages,
            copy / "site-packages",
            ignore=lambda _d, names: [n for n in names if n.split("-")[0] in _DEV_ONLY or n.endswith(".pth")],
        )
        shutil.copytree(Path(tui_migrator.__file__).parent, copy / "site-packages" / "tui_migrator")
        for directory, subdirectories, files in os.walk(copy):
            for name in [directory, *(os.path.join(directory, n) for n in subdirectories + files)]:
                os.chmod(name, 0o755 if os.path.isdir(name) else 0o644)
        yield Interpreter(system, str(copy / "site-packages"))
    finally:
        shutil.rmtree(copy)


class UnnamedProcess:
    """Runs ``python -m tui_migrator`` as ``uid`` (and gid ``uid``, no other groups), with an
    environment claiming to be root."""

    def __init__(self, uid: int, root: Path, interpreter: Interpreter) -> None:
        self.uid = uid
        self.root = root
        self.interpreter = interpreter
        self.settings = make_settings(root)
        self.environment = {
            **ROOT_CLAIMS,
            "HOME": str(root / "home"),
            "XDG_DATA_HOME": str(root / "home" / ".local" / "share"),
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if interpreter.path is not None:
            self.environment["PYTHONPATH"] = interpreter.path

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """``tui-migrator ARGV --json`` on the shared workspace."""
        return self.python("-m", "tui_migrator", *argv, "--json", *where(self.settings))

    def python(self, *argv: str) -> subprocess.CompletedProcess[str]:
        _hand_over(self.root, self.uid)
        return subprocess.run(
            [self.interpreter.executable, *argv],
            user=self.uid,
            group=self.uid,
            extra_groups=[],
            env=self.environment,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def json(self, *argv: str) -> tuple[int, dict[str, Any]]:
        finished = self.run(*argv)
        try:
            return finished.returncode, json.loads(finished.stdout)
        except json.JSONDecodeError:
            pytest.fail(
                f"'{' '.join(argv)}' as uid {self.uid} printed no JSON (exit {finished.returncode}):\n"
                f"stdout: {finished.stdout}\nstderr: {finished.stderr}"
            )


@pytest.fixture
def unnamed_process(shared_workspace: Path, interpreter: Interpreter) -> UnnamedProcess:
    """A way to run the tool as a uid with no passwd entry; skipped where that cannot be done
    (not root), which CI never is."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root and must run the unnamed-uid test", pytrace=False)
        pytest.skip("running a process as another uid needs root (this suite runs as root in CI)")
    process = UnnamedProcess(_free_uid(), shared_workspace, interpreter)
    checked = process.python("-c", "import tui_migrator.cli.main")
    assert checked.returncode == 0, f"uid {process.uid} cannot import the tool: {checked.stderr}"
    return process


def test_a_process_under_an_unnamed_uid_with_user_root_is_uid_n_end_to_end(
    unnamed_process: UnnamedProcess,
) -> None:
    name = f"uid:{unnamed_process.uid}"
    settings = unnamed_process.settings

    code, refusal = unnamed_process.json("operators", "grant", "mallory", "super_admin")
    assert code == 3, refusal
    assert refusal["errorCode"] == "permission_denied"
    assert f"The user '{name}' has no role" in refusal["error"]
    assert f"operators grant {name} viewer" in refusal["hint"]

    with MigratorService.open(settings, user=ADMIN) as admin:
        assert {o.username for o in admin.list_operators()} == {ADMIN}
        entries = admin.audit_entries(limit=None).entries  # newest first
        latest = entries[0]
        assert (latest.operation, latest.user_id, latest.success) == ("permission_denied", name, False)
        assert latest.details["attemptedOperation"] == "operators grant"
        assert "root" not in {entry.user_id for entry in entries}
        admin.grant(name, "viewer")

    code, listed = unnamed_process.json("operators", "list")
    assert code == 0, listed
    assert listed["data"]["currentUser"] == name
    roles = {o["username"]: o["role"] for o in listed["data"]["operators"]}
    assert roles == {ADMIN: "super_admin", name: "viewer"}
    code, migrations = unnamed_process.json("list")
    assert (code, migrations["success"]) == (0, True), migrations
