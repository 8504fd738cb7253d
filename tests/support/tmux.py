"""The real app in a real terminal: a tmux server of the test's own, in a clean environment.

Each terminal runs on its own tmux server (``-L``, a socket of its own), started with an
environment built from nothing: the developer's tmux server, and the ``TUI_MIGRATOR_*``
variables (a master key among them) that it or the shell carries, never reach the app under
test. Waits poll the screen for text; the timeouts only bound a failure, they measure nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

TMUX = shutil.which("tmux")
APP = f"{sys.executable} -m tui_migrator"


def clean_environment(data_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the app gets: a path, a home, a terminal type and its data dir — nothing inherited."""
    environment = {
        "PATH": os.defpath + os.pathsep + str(Path(sys.executable).parent),
        "HOME": str(data_dir.parent),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "TUI_MIGRATOR_DATA_DIR": str(data_dir),
    }
    environment.update(extra or {})
    return environment


def run_cli(environment: Mapping[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    """The CLI in the same clean environment as the terminal, outside it."""
    return subprocess.run(
        [sys.executable, "-m", "tui_migrator", *arguments],
        env=dict(environment),
        capture_output=True,
        text=True,
        check=False,
    )


class Terminal:
    """One tmux window running a command, on a private tmux server."""

    def __init__(self, socket: str, session: str) -> None:
        self.socket = socket
        self.session = session

    def _tmux(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert TMUX is not None
        return subprocess.run(
            [TMUX, "-L", self.socket, *arguments], capture_output=True, text=True, check=check
        )

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.session).stdout

    def press(self, *keys: str) -> None:
        """Keys by tmux's names (``Enter``, ``Escape``, ``C-s``, ``F2``) or literal letters."""
        for key in keys:
            self._tmux("send-keys", "-t", self.session, key)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", self.session, "-l", text)

    def wait_for(self, *texts: str, timeout: float = 30.0) -> str:
        """The screen once every one of ``texts`` is on it."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if all(text in screen for text in texts):
                return screen
            time.sleep(0.2)
        missing = [text for text in texts if text not in screen]
        raise AssertionError(f"{missing!r} did not appear; the screen was:\n{screen}")

    def wait_until_gone(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        screen = self.screen()
        while text in screen and time.monotonic() < deadline:
            time.sleep(0.2)
            screen = self.screen()
        assert text not in screen, f"{text!r} stayed on the screen:\n{screen}"
        return screen

    def alive(self) -> bool:
        return self._tmux("has-session", "-t", self.session, check=False).returncode == 0

    def wait_until_ended(self, timeout: float = 30.0) -> None:
        """Until the command has exited: its window, and with it this private server, is gone
        (nothing is left to read then, so a screen cannot show it)."""
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not self.alive(), f"the command did not exit; the screen was:\n{self.screen()}"


@contextmanager
def terminal(
    command: str, environment: Mapping[str, str], *, width: int = 80, height: int = 24
) -> Iterator[Terminal]:
    """``command`` in a ``width``×``height`` tmux window on a private server, killed afterwards."""
    assert TMUX is not None, "tmux is not installed"
    socket = f"tm-test-{uuid.uuid4().hex[:10]}"
    session = "app"
    # env -i: the server starts from this environment alone, whatever the caller's carries.
    subprocess.run(
        [
            "env",
            "-i",
            *[f"{name}={value}" for name, value in environment.items()],
            TMUX,
            "-L",
            socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            str(width),
            "-y",
            str(height),
            command,
        ],
        check=True,
    )
    window = Terminal(socket, session)
    try:
        yield window
    finally:
        window._tmux("kill-server", check=False)
