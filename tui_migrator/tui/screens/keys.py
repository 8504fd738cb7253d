"""Keys: each organization's data keys (generation, status, who made each and when; never key
material) and the master key's fingerprint; `r` rotates data keys.

A rotation is a migration of kind ``rotation``: like a start, it runs in a detached worker process
that survives the app, and the app opens its monitor once it exists. The list reads the database
on a timer rescheduled only after a load has finished, and only while the screen is in front,
so keys move from retiring to retired here while a rotation runs, without a key press.
"""

from __future__ import annotations

from collections import Counter

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Static
from textual.worker import Worker, WorkerState

from tui_migrator.storage.keyring import (
    KEY_STATUS_ACTIVE,
    KEY_STATUS_RETIRED,
    KEY_STATUS_RETIRING,
    DataKeyInfo,
)
from tui_migrator.storage.operators import Action
from tui_migrator.tui.formatting import local_time
from tui_migrator.tui.host import host_of
from tui_migrator.tui.messages import KeysLoaded, MigrationStarted, MonitorRequested
from tui_migrator.tui.refresh_timer import RefreshTimer
from tui_migrator.tui.screen_frame import KeyFooter, TitleHeader
from tui_migrator.tui.screens.base import AppScreen
from tui_migrator.tui.table_rows import show_rows
from tui_migrator.tui.worker_errors import report_failed_worker

LOAD_GROUP = "keys"
ROTATE_GROUP = "keys-rotate"
# Keys change only when a rotation runs (or a first value of an organization is encrypted).
REFRESH_SECONDS = 5.0
STATUSES = (KEY_STATUS_ACTIVE, KEY_STATUS_RETIRING, KEY_STATUS_RETIRED)
LEGEND = (
    "active seals new values · retiring: a rotation is re-sealing its tokens · retired: no token "
    "uses it any more. Every key still opens what it sealed."
)
# The organizations the dialog names one by one; beyond this it counts them.
NAMED_ORGANIZATIONS = 4


def summary_text(infos: list[DataKeyInfo]) -> str:
    """ "4 data keys of 3 organizations: 3 active · 1 retired" — statuses with none left out."""
    if not infos:
        return (
            "No data keys yet: an organization gets its key when its first value is encrypted "
            "(n configures a migration). There is nothing to rotate."
        )
    organizations = len({info.organization_id for info in infos})
    counts = Counter(info.status for info in infos)
    by_status = " · ".join(f"{counts[status]} {status}" for status in STATUSES if counts[status])
    keys = "data key" if len(infos) == 1 else "data keys"
    return (
        f"{len(infos)} {keys} of {organizations} organization{'s' if organizations != 1 else ''}: {by_status}"
    )


class KeysScreen(AppScreen):
    """The data keys per organization and the master key's fingerprint; r rotates."""

    BINDINGS = [
        Binding(
            "r",
            "rotate",
            "Rotate…",
            id="keys.rotate",
            tooltip="A new data key per organization, and a rotation that re-seals older tokens with it",
        ),
    ]
    AUTO_FOCUS = "#keys-table"

    def __init__(self) -> None:
        super().__init__()
        self._infos: list[DataKeyInfo] = []
        self._loaded = False
        # Why this operator may not rotate keys; None when they may (the service's words).
        self._denied: str | None = None
        self._refresh = RefreshTimer(self, REFRESH_SECONDS, self._load)

    def compose(self) -> ComposeResult:
        yield TitleHeader()
        yield Static("Loading…", id="keys-master", markup=False)
        yield Static("", id="keys-access", markup=False)
        yield DataTable(id="keys-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="keys-summary", markup=False)
        yield Static(LEGEND, id="keys-legend", classes="hint", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#keys-table", DataTable).add_columns(
            "key id", "organization", "gen", "status", "created", "by"
        )

    # -- loading ---------------------------------------------------------------------------

    def on_screen_resume(self) -> None:
        # Shown, or back from the monitor of a rotation started here: read the keys again.
        self._refresh.stop()
        self._load()

    def on_screen_suspend(self) -> None:
        self._refresh.stop()

    @work(thread=True, group=LOAD_GROUP, exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        service = self.host.service
        # Without the right to read, say so; asking anyway would audit a refusal every refresh.
        infos = service.data_keys() if service.can(Action.READ) else None
        self.post_message(
            KeysLoaded(
                infos,
                service.master_key_fingerprint,
                service.master_key_source,
                service.denied_reason(Action.MANAGE_KEYS),
            )
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == LOAD_GROUP and event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            self._refresh.schedule()

    @on(KeysLoaded)
    def _show(self, message: KeysLoaded) -> None:
        self._loaded = True
        self._denied = message.denied_reason
        self.query_one("#keys-master", Static).update(
            f"Master key: fingerprint {message.fingerprint}\n            read from {message.source}"
        )
        access = self.query_one("#keys-access", Static)
        access.set_class(message.denied_reason is not None, "-shown")
        access.update(f"Key rotation is not available: {message.denied_reason}.")
        summary = self.query_one("#keys-summary", Static)
        if message.infos is None:
            self._infos = []
            summary.update(f"Data keys: not shown, {self.host.service.user} has no role that may read them")
        else:
            self._infos = message.infos
            summary.update(summary_text(message.infos))
        self._fill()
        self.refresh_bindings()

    def _fill(self) -> None:
        # Refreshed every few seconds (table_rows: only what changed, the cursor on its row).
        show_rows(
            self.query_one("#keys-table", DataTable),
            [
                (
                    info.key_id,
                    (
                        info.key_id,
                        info.organization_id,
                        str(info.generation),
                        info.status,
                        local_time(info.created_at, seconds=False),
                        info.created_by,
                    ),
                )
                for info in self._infos
            ],
        )

    def _selected_info(self) -> DataKeyInfo | None:
        table = self.query_one("#keys-table", DataTable)
        if not table.row_count:
            return None
        key_id = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((info for info in self._infos if info.key_id == key_id), None)

    # -- rotating --------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action != "rotate":
            return True
        # --readonly hides what changes data; a role that may not rotate sees it disabled,
        # with the reason above the table. Until the first load the answer is not known.
        if self.host.service.settings.readonly:
            return False
        return True if self._loaded and self._denied is None else None

    def action_rotate(self) -> None:
        organizations = sorted({info.organization_id for info in self._infos})
        selected = self._selected_info()
        self.app.push_screen(
            RotateKeysModal(organizations, None if selected is None else selected.organization_id)
        )


class RotateKeysModal(ModalScreen[bool]):
    """Rotate the keys of every organization, or of the one under the cursor, in a detached
    worker; then open the rotation's monitor."""

    # Two ways to start, so no key starts by itself: the operator tabs to the button that says
    # what it rotates and presses it. Focus starts on Cancel, as in every confirmation.
    AUTO_FOCUS = "#rotate-cancel"
    BINDINGS = [
        # `c` too: tmux's escape-time delays a bare escape.
        Binding("escape,c", "cancel", "Cancel", id="rotate_keys.cancel"),
    ]

    def __init__(self, organizations: list[str], highlighted: str | None) -> None:
        super().__init__()
        self._organizations = organizations
        self._highlighted = highlighted
        self._rotating = False

    def compose(self) -> ComposeResult:
        with Vertical(id="rotate-dialog"):
            yield Static("Rotate data keys?", classes="panel-title")
            yield Static(
                "Each organization chosen gets a new data key, which seals every value from now on. "
                "A key rotation then re-seals every token under an older key with it, in a "
                "background worker that keeps running if this terminal closes. No value changes: "
                "there is no backup and nothing to roll back; pause, cancel and resume work as on "
                "any migration.",
                markup=False,
            )
            yield Static("\n".join(self._choice_lines()), id="rotate-choices", markup=False)
            with Horizontal(id="rotate-buttons"):
                yield Button("Cancel", id="rotate-cancel")
                if self._highlighted is not None:
                    yield Button("Rotate one", id="rotate-one")
                yield Button("Rotate all", id="rotate-all", variant="warning")
            yield Static(
                "tab moves to a button, enter presses it · esc or c cancels",
                id="rotate-status",
                classes="hint",
                markup=False,
            )

    def _choice_lines(self) -> list[str]:
        count = len(self._organizations)
        if count <= NAMED_ORGANIZATIONS:
            named = ", ".join(self._organizations) or "none yet"
        else:
            named = (
                ", ".join(self._organizations[:NAMED_ORGANIZATIONS])
                + f" and {count - NAMED_ORGANIZATIONS} more"
            )
        lines = []
        if self._highlighted is not None:
            lines.append(f"Rotate one: {self._highlighted} (the key under the cursor)")
        lines.append(f"Rotate all: every organization with keys ({named})")
        return lines

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Once the rotation is being created, closing the dialog would only lose its monitor.
        return None if action == "cancel" and self._rotating else True

    def action_cancel(self) -> None:
        if not self._rotating:
            self.dismiss(False)

    @on(Button.Pressed, "#rotate-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#rotate-one")
    def _one_pressed(self) -> None:
        if self._highlighted is not None:
            self._begin([self._highlighted])

    @on(Button.Pressed, "#rotate-all")
    def _all_pressed(self) -> None:
        # None named: the service rotates every organization with keys, as `keys rotate` does.
        self._begin([])

    def _begin(self, organizations: list[str]) -> None:
        if self._rotating:
            return
        self._set_rotating(True)
        self._rotate(organizations)

    def _set_rotating(self, rotating: bool) -> None:
        self._rotating = rotating
        if rotating:
            self.query_one("#rotate-status", Static).update("starting the rotation…")
        for button in self.query(Button):
            button.disabled = rotating
        if not rotating:
            self.query_one("#rotate-cancel", Button).focus()
        self.refresh_bindings()

    @work(thread=True, group=ROTATE_GROUP, exclusive=True, exit_on_error=False)
    def _rotate(self, organizations: list[str]) -> None:
        record = host_of(self.app).service.rotate_keys(organizations, detach=True)
        self.post_message(MigrationStarted(record.id))

    @on(MigrationStarted)
    def _started(self, message: MigrationStarted) -> None:
        self.dismiss(True)
        # The dialog is gone once dismissed: the app, which stays, opens the monitor.
        self.app.post_message(MonitorRequested(message.migration_id))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble: report a failure here, as every screen does.
        report_failed_worker(self.app, event)
        if event.worker.group == ROTATE_GROUP and event.state is WorkerState.ERROR:
            self.query_one("#rotate-status", Static).update(
                "Nothing was rotated (see the notification). esc or c closes"
            )
            self._set_rotating(False)
