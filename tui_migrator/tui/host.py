"""What the screens may ask of the app that hosts them, without importing it.

The app imports every screen (to register them as modes), so a screen that imported the app
back would close an import cycle. Screens see the app through this protocol instead; the app
satisfies it, and ``host_of`` is the one place the plain ``App`` a widget holds is checked and
narrowed to it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from textual.app import App

from tui_migrator.service.facade import MigratorService
from tui_migrator.tui.recent_errors import RecentErrors


@runtime_checkable
class MigratorHost(Protocol):
    """The app's state that screens share."""

    service: MigratorService
    # The configuration on the new-migration form, which the estimate screen estimates and whose
    # batch size and concurrency its "take advice" (t) rewrites; None until the form made one.
    pending_config: dict[str, Any] | None
    # Why mutating actions are unavailable (read-only session, or a role that may not migrate);
    # None when they are available.
    denied_reason: str | None
    # The error notifications shown this session, for the log view to list.
    recent_errors: RecentErrors

    def action_go(self, mode: str) -> None:
        """Open a top-level screen's home (``dashboard``, ``new``, ``estimate``, ``migrations``,
        ``audit``), as its key does."""
        ...

    def mutation_state(self) -> bool | None:
        """For check_action of mutating actions: True allowed, None shown disabled, False hidden."""
        ...

    def open_log(self, migration_id: str | None = None) -> None:
        """Open the log view: the recent errors and the error log, and the migration's worker
        log when one is named."""
        ...


def host_of(app: App[Any]) -> MigratorHost:
    """The running app as a MigratorHost; a screen mounted in any other app is a programming error."""
    if not isinstance(app, MigratorHost):
        raise TypeError(f"{type(app).__name__} does not host tui-migrator's screens (see tui/host.py)")
    return app
