"""The footer every screen shows: its keys, compact, without the command palette's, and without
keeping the keys it replaced alive.

Textual's Footer rebuilds its keys whenever the screen's bindings change (a monitor's keys change
with the migration's state), and binds each new key to its ``compact`` setting. That binding is
a watcher kept on the footer, which Textual drops only when ``compact`` changes — never, here —
so each rebuild kept every key it removed, with its styles, alive for the life of the screen
(Textualize/textual#6666, open in 8.2.8). A monitor left open for a long migration grew by
tens of thousands of objects a minute, and the garbage collector's full passes over them held the
operator's key presses up to a quarter of a second after a few minutes (2026-12-05).
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Footer

# Where Textual keeps the watchers of an object's reactive attributes (textual/reactive.py); the
# attribute is set and read by this literal name, so it is not name-mangled.
_WATCHERS = "__watchers"


class KeyFooter(Footer):
    def __init__(self, **options: Any) -> None:
        super().__init__(compact=True, show_command_palette=False, **options)

    async def recompose(self) -> None:
        await super().recompose()
        self._forget_removed_keys()

    def _forget_removed_keys(self) -> None:
        """Drop the watchers whose key is no longer in the footer (removed by the rebuild): the
        keys it shows now are attached, their watchers stay."""
        watchers: dict[str, list[tuple[Any, Any]]] = getattr(self, _WATCHERS, {})
        for attribute, entries in watchers.items():
            watchers[attribute] = [(node, callback) for node, callback in entries if node.is_attached]
