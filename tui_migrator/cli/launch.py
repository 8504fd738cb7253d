"""The program's entry point (the ``tui-migrator`` script, ``python -m tui_migrator``): for a
command that starts a migration here, the server its worker processes are forked from is started
first, then the command line is read and run (cli/main.py).

Started this early, the server's imports (half a second of one core) overlap the program's own
(the CLI, the service, SQLAlchemy: another half second, on the other core) and its opening of
the database. Started later, when ``start`` knew its settings, they overlapped the start's
calibration sample instead, and took CPU from it and from the database server's work for it:
the sample's stages, timed on the calibration's clock (common/uncontended_clock.py), came out
short, and so did the estimate: −9 to −17 % (median −14 %) against the migration in nine
``start`` runs on PostgreSQL (100,000 rows, ``--max-concurrency 4``, 2026-12-05), −0 to +18 %
(median +7 %) in nine runs started this way, as close as ``estimate``'s own; the runs took as
long either way (median 10.2 s from the command to its end). Where the program did not start
it (the TUI, the HTTP API), ``start`` starts it after its calibration (service/lifecycle.py).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

from tui_migrator.engine import process_server


def entry() -> NoReturn:
    if starts_a_run_here(sys.argv[1:]):
        process_server.start()
    # Imported only now: its imports are what the server's overlap.
    from tui_migrator.cli.main import entry as run_command

    run_command()


def starts_a_run_here(arguments: Sequence[str]) -> bool:
    """Whether the command line starts a migration in this process with worker processes: a
    ``start`` that is not detached, not asking for help and not at ``--max-concurrency 1``.

    Read before the parser exists (building it imports most of the tool), by its words alone; a
    wrong guess costs little either way — a server started for nothing (its imports on a spare
    core, then it waits for the program's end), or one started where the run starts it anyway,
    later. A concurrency from a config file or the environment is not seen here."""
    words = list(arguments)
    if "start" not in words or any(word in words for word in ("--detach", "--help", "-h")):
        return False
    for index, word in enumerate(words):
        if word == "--max-concurrency" and words[index + 1 : index + 2] == ["1"]:
            return False
        if word == "--max-concurrency=1":
            return False
    return True
