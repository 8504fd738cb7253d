"""An input field that keeps the app's keys reachable.

Inside a field, letters are text: `n`, `l`, `a`, `?`, `q` type themselves, so the app hides those
keys from the footer while a field has focus (MigratorApp.check_action) and this field offers
their F-key twins instead, shown in the footer while it has focus. The F-keys work everywhere
else too (they are the app's own bindings); only here do they need saying.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input


class FieldInput(Input):
    BINDINGS = [
        Binding("f1", "app.help_from_field", "Help", id="field.help"),
        Binding("f2", "app.go_from_field('dashboard')", "Dashboard", id="field.dashboard", show=False),
        Binding("f3", "app.go_from_field('new')", "New", id="field.new"),
        Binding("f4", "app.go_from_field('estimate')", "Estimate", id="field.estimate", show=False),
        Binding("f5", "app.go_from_field('migrations')", "Migrations", id="field.migrations"),
        Binding("f6", "app.go_from_field('audit')", "Audit", id="field.audit", show=False),
    ]
