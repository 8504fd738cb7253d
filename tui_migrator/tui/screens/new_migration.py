"""New migration: a form for the seed's MigrationConfig; ``Start…`` opens its confirmation
(confirm_start.py), which starts it, and "Load config" fills it from a file (load_config.py).

Every field is checked as it is typed by MigrationConfig's own validators (config_fields.py),
so the form and the CLI refuse the same values in the same words. The last valid configuration
is kept on the app as ``pending_config`` (see tui/host.py): the estimate screen estimates it,
and its "take advice" (t) writes it back, which the form picks up when it is shown again.
"""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Checkbox, Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection
from textual.worker import Worker, WorkerState

from tui_migrator.common.categories import CATEGORY_NAMES
from tui_migrator.common.errors import InvalidMigrationConfig
from tui_migrator.common.migration_config import (
    MAX_BATCH_SIZE,
    MAX_CONCURRENCY,
    MIN_BATCH_SIZE,
    MIN_CONCURRENCY,
    parse_config,
)
from tui_migrator.common.windows import local_zone_name
from tui_migrator.tui.config_text import describe_config
from tui_migrator.tui.field_input import FieldInput
from tui_migrator.tui.formatting import count
from tui_migrator.tui.messages import ScopeCounted
from tui_migrator.tui.screen_frame import KeyFooter, TitleHeader
from tui_migrator.tui.screens.base import AppScreen
from tui_migrator.tui.screens.config_fields import (
    DEFAULT_VALUES,
    TEXT_FIELDS,
    ConfigFieldValidator,
    field_problem,
    field_value,
    scope_prompt,
    toggle_label,
)
from tui_migrator.tui.screens.confirm_start import ConfirmStartModal
from tui_migrator.tui.screens.load_config import LoadConfigModal, LoadedConfig
from tui_migrator.tui.word_checkbox import WordCheckbox, WordSelectionList


class NewMigrationScreen(AppScreen):
    """Settings on the left, scope (categories and organizations with their counts) on the right."""

    AUTO_FOCUS = "#batch-size"
    BINDINGS = [
        # Letters type into the fields; esc leaves the field so the app's keys (l, a, q…) work,
        # and once no field has focus, esc goes back like everywhere else (the app's binding).
        Binding("escape", "leave_field", "Leave field", id="new_migration.leave_field"),
        Binding(
            "ctrl+s,f9",
            "start",
            "Start…",
            id="new_migration.start",
            tooltip="Review this configuration and start it",
        ),
        # Priority: the inputs bind ctrl+e to "end of line" (the end key still does that).
        Binding(
            "ctrl+e,f8",
            "estimate",
            "Estimate this",
            id="new_migration.estimate",
            tooltip="Estimate this configuration",
            priority=True,
        ),
        Binding(
            "ctrl+o,f7",
            "load_config",
            "Load…",
            id="new_migration.load_config",
            tooltip="Fill the form from a MigrationConfig file (.json or .toml), as start --config reads it",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        # The configuration this form last wrote to, or loaded from, the app.
        self._published: dict[str, Any] | None = None
        # Organizations to select once the counts have listed them.
        self._wanted_organizations: list[str] = []
        self._organizations_listed = False
        # Records to encrypt per category and per organization, by list id, once counted.
        self._counts: dict[str, dict[str, int]] = {}
        self._scope_counts: ScopeCounted | None = None

    def compose(self) -> ComposeResult:
        values = self.host.pending_config or DEFAULT_VALUES
        self._published = self.host.pending_config
        self._wanted_organizations = list(values["organization_ids"])
        yield TitleHeader()
        with Horizontal(id="new-migration-body"):
            with VerticalScroll(id="settings-panel", classes="panel", can_focus=False):
                yield Static("Settings", classes="panel-title")
                with Horizontal(classes="field"):
                    yield Label("Batch size", classes="field-label")
                    yield FieldInput(
                        str(values["batch_size"]),
                        placeholder=f"{MIN_BATCH_SIZE}-{MAX_BATCH_SIZE} or auto",
                        restrict=r"[0-9]*|[aA][uU]?[tT]?[oO]?",
                        validators=[ConfigFieldValidator("batch_size")],
                        id="batch-size",
                    )
                yield Static("", id="batch-size-message", classes="field-message", markup=False)
                with Horizontal(classes="field"):
                    yield Label("Concurrency", classes="field-label")
                    yield FieldInput(
                        str(values["max_concurrency"]),
                        placeholder=f"{MIN_CONCURRENCY}-{MAX_CONCURRENCY}",
                        restrict=r"[0-9]*",
                        validators=[ConfigFieldValidator("max_concurrency")],
                        id="max-concurrency",
                    )
                yield Static("", id="max-concurrency-message", classes="field-message", markup=False)
                # Labels say the state in words: the box differs only in colour.
                yield WordCheckbox(
                    toggle_label("dry-run", values["dry_run"]), values["dry_run"], id="dry-run"
                )
                yield WordCheckbox(
                    toggle_label("skip-integrity", values["skip_integrity_checks"]),
                    values["skip_integrity_checks"],
                    id="skip-integrity",
                )
                yield Static(
                    "DANGER: written rows will not be read back and verified.",
                    id="skip-integrity-warning",
                    classes="field-warning",
                )
                yield WordCheckbox(
                    toggle_label("create-backups", values["create_backups"]),
                    values["create_backups"],
                    id="create-backups",
                )
                yield Static(
                    "WARNING: no backups; a rollback relies on decrypting the tokens alone.",
                    id="backups-warning",
                    classes="field-warning",
                )
                # When it may take batches (README "Maintenance windows and scheduled starts"):
                # each empty = none, and an empty zone is this machine's, as the CLI's options.
                for input_id, placeholder in _schedule_placeholders().items():
                    field, label = TEXT_FIELDS[input_id]
                    with Horizontal(classes="field schedule-field"):
                        yield Label(label, classes="field-label")
                        yield FieldInput(
                            values[field] or "",
                            placeholder=placeholder,
                            validators=[ConfigFieldValidator(field)],
                            id=input_id,
                        )
                    yield Static("", id=f"{input_id}-message", classes="field-message", markup=False)
                # Last, as it comes last: the sweep after the migration (README "Sweep").
                yield WordCheckbox(
                    toggle_label("sweep-later", values["sweep_later"]),
                    values["sweep_later"],
                    id="sweep-later",
                )
                yield Static(
                    "SQLite: the old plaintext stays in the file's free space until you sweep "
                    "(s on its monitor, or sweep ID).",
                    id="sweep-later-warning",
                    classes="field-warning",
                )
            with Vertical(id="scope-panel", classes="panel"):
                yield Static("Scope (space toggles)", classes="panel-title")
                yield Static("counting…", id="counts-status", classes="hint", markup=False)
                yield Label("Categories (none selected = all)")
                yield WordSelectionList(
                    *(
                        Selection(
                            scope_prompt(name),
                            name,
                            name in values["data_categories"],
                        )
                        for name in CATEGORY_NAMES
                    ),
                    id="categories",
                )
                yield Label("Organizations (none selected = all)")
                yield WordSelectionList(id="organizations")
        yield Static("", id="form-status", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        reason = self.host.denied_reason
        status = self.query_one("#form-status", Static)
        if reason:
            status.update(f"Starting is unavailable: {reason}.")
        status.set_class(bool(reason), "-shown")
        self._show_toggles()
        self._count()

    def on_screen_resume(self) -> None:
        # The estimate screen's "take advice" may have changed the shared configuration.
        shared = self.host.pending_config
        if shared is not None and shared != self._published:
            self._fill(shared)

    # -- actions ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start":
            return self.host.mutation_state()
        if action == "leave_field":
            # Hidden (and esc falls through to the app's "back") when no field has focus.
            return isinstance(self.focused, Input)
        return True

    def action_start(self) -> None:
        values = self._checked_values("start")
        if values is not None:
            self.app.push_screen(ConfirmStartModal(values), self._after_confirmation)

    def _after_confirmation(self, started: bool | None) -> None:
        # The monitor opens on top of the form: when esc brings the operator back here, the
        # focus is on the scope, not in a field, so the next letter is an app key rather than a
        # character typed into batch size. (No focus at all would bring AUTO_FOCUS back.)
        if started:
            self.query_one("#categories", SelectionList).focus()

    def action_estimate(self) -> None:
        if self._checked_values("estimate") is not None:
            self.host.action_go("estimate")

    def action_load_config(self) -> None:
        self.app.push_screen(LoadConfigModal(), self._loaded)

    def _loaded(self, loaded: LoadedConfig | None) -> None:
        if loaded is None:
            return
        # The file's keys over the defaults, as `start --config FILE` reads it: the form shows
        # exactly the configuration the file describes, not a mix with what was typed before.
        values = parse_config(loaded.values).model_dump(mode="json")
        self._fill(values)
        self._publish(values)
        self.notify(describe_config(values), title=f"Loaded {loaded.path}")

    def _checked_values(self, verb: str) -> dict[str, Any] | None:
        """The form's configuration, shared with the app; None (and a notification) if invalid."""
        values, problems = self._read_form()
        if values is None:
            self.notify("; ".join(problems), title=f"Cannot {verb}: fix the form", severity="error")
            return None
        self._publish(values)
        return values

    # -- reading and filling the form ------------------------------------------------------

    def _read_form(self) -> tuple[dict[str, Any] | None, list[str]]:
        """The validated configuration (JSON-shaped, snake_case), or the problems in words."""
        problems = []
        raw: dict[str, Any] = {}
        for input_id, (field, label) in TEXT_FIELDS.items():
            typed = self.query_one(f"#{input_id}", Input).value
            raw[field] = field_value(field, typed)
            problem = field_problem(field, typed)
            if problem is not None:
                problems.append(f"{label} {problem}")
        if problems:
            return None, problems
        raw.update(
            dry_run=self.query_one("#dry-run", Checkbox).value,
            skip_integrity_checks=self.query_one("#skip-integrity", Checkbox).value,
            create_backups=self.query_one("#create-backups", Checkbox).value,
            sweep_later=self.query_one("#sweep-later", Checkbox).value,
            data_categories=list(self.query_one("#categories", SelectionList).selected),
            organization_ids=self._selected_organizations(),
        )
        try:
            config = parse_config(raw)
        except InvalidMigrationConfig as error:
            return None, [error.message]
        return config.model_dump(mode="json"), []

    def _selected_organizations(self) -> list[str]:
        if not self._organizations_listed:
            return list(self._wanted_organizations)
        return list(self.query_one("#organizations", SelectionList).selected)

    def _publish(self, values: dict[str, Any]) -> None:
        self._published = values
        self.host.pending_config = values

    def _fill(self, values: dict[str, Any]) -> None:
        self._published = values
        self.query_one("#batch-size", Input).value = str(values["batch_size"])
        self.query_one("#max-concurrency", Input).value = str(values["max_concurrency"])
        for input_id in _schedule_placeholders():
            self.query_one(f"#{input_id}", Input).value = values[TEXT_FIELDS[input_id][0]] or ""
        self.query_one("#dry-run", Checkbox).value = values["dry_run"]
        self.query_one("#skip-integrity", Checkbox).value = values["skip_integrity_checks"]
        self.query_one("#create-backups", Checkbox).value = values["create_backups"]
        self.query_one("#sweep-later", Checkbox).value = values["sweep_later"]
        categories = self.query_one("#categories", SelectionList)
        categories.deselect_all()
        for name in values["data_categories"]:
            categories.select(name)
        self._wanted_organizations = list(values["organization_ids"])
        if self._organizations_listed:
            self._select_organizations()

    def _select_organizations(self) -> None:
        organizations: SelectionList[str] = self.query_one("#organizations", SelectionList)
        listed = {
            organizations.get_option_at_index(index).value for index in range(organizations.option_count)
        }
        # An organization with nothing left to encrypt is not counted, but may still be asked for.
        organizations.add_options(
            Selection(Content(name), name) for name in self._wanted_organizations if name not in listed
        )
        organizations.deselect_all()
        for name in self._wanted_organizations:
            organizations.select(name)
        self._show_counts_in_prompts(organizations)

    # -- events ----------------------------------------------------------------------------

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        field_id = event.input.id or ""
        if field_id not in TEXT_FIELDS:
            return
        result = event.validation_result
        problems = result.failure_descriptions if result is not None else []
        message = self.query_one(f"#{field_id}-message", Static)
        message.update(f"{TEXT_FIELDS[field_id][1]} {problems[0]}" if problems else "")
        message.set_class(bool(problems), "-invalid")
        if problems:
            # The last fields sit at the panel's foot: scroll their message into sight.
            self.call_after_refresh(message.scroll_visible, animate=False)
        self._changed()

    @on(Checkbox.Changed)
    def _checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._show_toggles()
        self._changed()
        if event.checkbox.id == "sweep-later" and event.value:
            # The form's last line, below the fold at 80x24: what checking it means is shown,
            # once the warning just made visible has its place in the layout.
            warning = self.query_one("#sweep-later-warning")
            self.call_after_refresh(warning.scroll_visible, animate=False)

    @on(SelectionList.SelectedChanged)
    def _selection_changed(self, event: SelectionList.SelectedChanged[str]) -> None:
        self._show_selected_total()
        self._changed()

    def _show_selected_total(self) -> None:
        """What this selection would encrypt (none selected = all), beside what is done already."""
        counted = self._scope_counts
        if counted is None:
            return
        categories = set(self.query_one("#categories", SelectionList).selected)
        organizations = set(self._selected_organizations())
        selected = sum(
            rows
            for category, per_organization in counted.by_category_and_organization.items()
            if not categories or category in categories
            for organization, rows in per_organization.items()
            if not organizations or organization in organizations
        )
        everything = sum(counted.by_category.values())
        words = f"{count(selected)} records to encrypt in this selection"
        if selected != everything:
            words += f" (of {count(everything)})"
        if counted.already_encrypted:
            words += f"; {count(counted.already_encrypted)} already encrypted"
        self.query_one("#counts-status", Static).update(words)

    def _changed(self) -> None:
        # Keep the shared configuration current, so `e` from anywhere estimates what is on the form.
        values, _problems = self._read_form()
        if values is not None:
            self._publish(values)

    def _show_toggles(self) -> None:
        for checkbox in self.query(Checkbox):
            checkbox.label = toggle_label(checkbox.id or "", checkbox.value)
        skip = self.query_one("#skip-integrity", Checkbox).value
        backups = self.query_one("#create-backups", Checkbox).value
        self.query_one("#skip-integrity-warning").set_class(skip, "-shown")
        self.query_one("#backups-warning").set_class(not backups, "-shown")
        sweep_later = self.query_one("#sweep-later", Checkbox).value
        self.query_one("#sweep-later-warning").set_class(sweep_later, "-shown")

    def _show_counts_in_prompts(self, selection_list: SelectionList[str]) -> None:
        counts = self._counts.get(selection_list.id or "")
        count_width = max((len(count(records)) for records in (counts or {}).values()), default=0)
        for index in range(selection_list.option_count):
            name = selection_list.get_option_at_index(index).value
            records = None if counts is None else counts.get(name, 0)
            prompt = scope_prompt(name, records, count_width)
            selection_list.replace_option_prompt_at_index(index, prompt)

    # -- record counts ---------------------------------------------------------------------

    @work(thread=True, group="new-migration-counts", exclusive=True, exit_on_error=False)
    def _count(self) -> None:
        scope = self.host.service.plan({}).scope
        both: dict[str, dict[str, int]] = {}
        for table in scope.tables:
            per_organization = both.setdefault(table.access.mapped.category.value, {})
            for organization, rows in table.pending_by_organization.items():
                per_organization[organization] = per_organization.get(organization, 0) + rows
        self.post_message(ScopeCounted(scope.by_category, scope.by_organization, both, scope.encrypted_rows))

    @on(ScopeCounted)
    def _show_counts(self, message: ScopeCounted) -> None:
        self._counts = {"categories": message.by_category, "organizations": message.by_organization}
        organizations: SelectionList[str] = self.query_one("#organizations", SelectionList)
        organizations.clear_options()
        organizations.add_options(Selection(Content(name), name) for name in sorted(message.by_organization))
        self._organizations_listed = True
        self._select_organizations()
        self._show_counts_in_prompts(self.query_one("#categories", SelectionList))
        self._scope_counts = message
        self._show_selected_total()

    def action_leave_field(self) -> None:
        self.set_focus(None)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "new-migration-counts" and event.state is WorkerState.ERROR:
            self.query_one("#counts-status", Static).update("counts unavailable (see the notification)")


def _schedule_placeholders() -> dict[str, str]:
    """The schedule's inputs (by id) with what each shows while empty."""
    return {"window": "01:00-05:00", "timezone": local_zone_name(), "not-before": "2026-12-24T01:00"}
