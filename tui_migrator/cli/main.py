"""Entry point of ``tui-migrator``: parse, open the service, run one command, map errors to exit codes."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

from tui_migrator.cli import commands
from tui_migrator.cli.output import emit_error, emit_result
from tui_migrator.cli.parser import build_parser
from tui_migrator.common.errors import Interrupted, MigratorError, OperationFailed
from tui_migrator.common.settings import Settings
from tui_migrator.service import failures

log = logging.getLogger("tui_migrator")


def entry() -> NoReturn:
    """The process's entry point (the ``tui-migrator`` script, ``python -m tui_migrator``, a
    detached worker), once cli/launch.py has taken its first step: :func:`main`, then exit with
    its code.

    Before exiting, every object left is frozen out of the garbage collector's reach: the
    interpreter's last collections would walk them all (SQLAlchemy's and the tool's), which took
    0.17–0.2 s between a command's output and the end of its process. They go with the process
    anyway; what needed closing was closed by the command (the service closes its database
    engine), and the exit handlers (logging's flush, the worker processes' shutdown) still run.
    Callers in this process (tests) call :func:`main`, which leaves the collector alone."""
    code = main()
    gc.freeze()
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in arguments
    try:
        args = build_parser().parse_args(arguments)
        as_json = args.json
        with _logging_to_stderr(verbose=args.verbose):
            return _run(args, as_json=as_json)
    except MigratorError as error:
        emit_error(error, as_json=as_json)
        return error.exit_code


def _run(args: argparse.Namespace, *, as_json: bool) -> int:
    settings: Settings | None = None
    try:
        settings = Settings.resolve(
            {
                "database_url": args.database_url,
                "schema_path": args.schema_path,
                "data_dir": args.data_dir,
                "master_key_file": args.master_key_file,
                "readonly": args.readonly,
            }
        )
        if args.command is None:
            # The one lazy import: commands (and every --json script) never load Textual.
            from tui_migrator.tui.launch import run_tui

            return run_tui(settings)
        result = commands.run(args, settings)
    except MigratorError as error:
        emit_error(error, as_json=as_json, settings=settings)
        return error.exit_code
    except KeyboardInterrupt:
        stopped = Interrupted("Interrupted.")
        emit_error(stopped, as_json=as_json)
        return stopped.exit_code
    except Exception as error:  # the last line of defence: a message, never a traceback
        log.debug("internal error", exc_info=True)
        said = failures.plain(error)  # the database failing under the command, in its words
        if said is not None:
            emit_error(said, as_json=as_json, settings=settings)
            return said.exit_code
        emit_error(
            OperationFailed(
                f"Internal error ({type(error).__name__}).",
                hint="Run again with -v for details, and report it with the command you ran.",
            ),
            as_json=as_json,
        )
        return 1
    emit_result(result, as_json=as_json, settings=settings)
    return result.exit_code


@contextmanager
def _logging_to_stderr(*, verbose: bool) -> Iterator[None]:
    """Route the package's log records to stderr for one run, then restore the logger (so
    in-process callers such as tests keep their own logging set-up)."""
    saved = (list(log.handlers), log.level, log.propagate)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.WARNING)
    log.propagate = False
    try:
        yield
    finally:
        log.handlers[:], log.level, log.propagate = saved
