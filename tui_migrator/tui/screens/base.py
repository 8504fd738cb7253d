"""What every screen of the app shares."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.worker import Worker


class AppScreen(Screen[Any]):
    """A screen whose failed workers reach the app's one error handler.

    Worker.StateChanged does not bubble, so without this the app would hear only of its own
    workers, and a failed service call on a screen would pass in silence. Textual calls this
    after a subclass's own handler (handlers run along the MRO); a subclass that has already
    reported an error calls ``event.prevent_default()`` to stop it here.
    """

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.app.on_worker_state_changed(event)  # type: ignore[attr-defined]
