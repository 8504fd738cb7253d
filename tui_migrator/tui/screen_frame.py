"""The header and footer every screen shows, without keeping alive what they leave behind.

Textual keeps a watcher of a reactive attribute on the object watched, with the node that asked,
and drops it only when that attribute changes (Textualize/textual#6666, open in 8.2.8). Two
widgets every screen shows watch attributes that never change here, so each kept what it left
behind for the life of the app:

- the footer rebuilds its keys whenever the screen's bindings change (a monitor's change with the
  migration's state) and binds each new key to its own ``compact`` setting: every key it removed
  stayed alive. A monitor left open grew by some 900 objects a second, and the garbage
  collector's full passes over them held key presses up to a quarter of a second within minutes
  (2026-12-05);
- the header watches the app's title: every screen closed (a monitor, the log view) left its
  header alive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.dom import DOMNode
from textual.widgets import Footer, Header

# Where Textual keeps the watchers of an object's reactive attributes (textual/reactive.py); the
# attribute is set and read by this literal name, so it is not name-mangled.
_WATCHERS = "__watchers"


def forget_watchers(observed: object, of: Callable[[DOMNode], bool]) -> None:
    """Drop the watchers of ``observed``'s attributes that nodes matching ``of`` asked for."""
    watchers: dict[str, list[tuple[DOMNode, Any]]] = getattr(observed, _WATCHERS, {})
    for attribute, entries in watchers.items():
        watchers[attribute] = [(node, callback) for node, callback in entries if not of(node)]


class KeyFooter(Footer):
    """The screen's keys, compact, without the command palette's."""

    def __init__(self, **options: Any) -> None:
        super().__init__(compact=True, show_command_palette=False, **options)

    async def recompose(self) -> None:
        await super().recompose()
        # The keys it shows now are attached; those the rebuild removed are not.
        forget_watchers(self, lambda key: not key.is_attached)


class TitleHeader(Header):
    """The app's title and the database it works on."""

    def on_unmount(self) -> None:
        forget_watchers(self.app, lambda node: node is self)
