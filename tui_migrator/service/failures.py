"""Which failures of a command the faces can put in plain words, beside the service's own errors.

A face (the CLI, the HTTP API, the TUI) shows a MigratorError as it is and treats anything else
as unexpected: its class only, its details in the error log, since a driver's message may quote
a record's value. One kind more is said plainly: the database failing under the command (its
connection lost, its server restarting, its disk full), whose message names the connection, the
server or the disk. The operator then knows to look at the database and run the command again,
instead of reading "internal error, report it".
"""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from tui_migrator.common.errors import MigratorError
from tui_migrator.engine.retry import database_unavailable


def plain(error: BaseException | None) -> MigratorError | None:
    """``error`` as the MigratorError a face shows, or None where it is unexpected."""
    if isinstance(error, MigratorError):
        return error
    if isinstance(error, OperationalError):
        return database_unavailable(error)
    return None
