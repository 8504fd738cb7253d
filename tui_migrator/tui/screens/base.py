"""What every screen of the app shares."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.worker import Worker

from tui_migrator.tui.host import MigratorHost, host_of
from tui_migrator.tui.worker_errors import report_failed_worker


class AppScreen(Screen[Any]):
    """A screen of the app: it reaches the app's shared state through ``host``, and its failed
    workers become notifications.

    Worker.StateChanged does not bubble, so without the handler below a failed service call on
    a screen would pass in silence. Textual calls it after a subclass's own handler (handlers
    run along the MRO); a subclass that has already reported an error calls
    ``event.prevent_default()`` to stop it here.
    """

    @property
    def host(self) -> MigratorHost:
        return host_of(self.app)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_failed_worker(self.app, event)
