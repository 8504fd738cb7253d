"""How the service's errors reach an HTTP client: the CLI's JSON error object, with the status
that says which kind of error it is.

The body is the same ``{"success": false, "error", "errorCode", "hint"}`` the CLI prints with
``--json``; the status is decided by the error's class alone, so every endpoint answers the
same error the same way. An error the service did not expect is a 500 whose body says where the
details were kept (the server's error log, readable by its operator only) and nothing else.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tui_migrator.common.errors import (
    BadInput,
    DatabaseUnavailable,
    MigratorError,
    PermissionDenied,
    StateConflict,
    Unauthenticated,
    UnknownMigration,
)
from tui_migrator.service import failures
from tui_migrator.service.hints import addressed

log = logging.getLogger("tui_migrator.http")

# Most specific first: UnknownMigration and StateConflict are kinds of BadInput.
_STATUS_OF: tuple[tuple[type[MigratorError], int], ...] = (
    (DatabaseUnavailable, 503),
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (UnknownMigration, 404),
    (StateConflict, 409),
    (BadInput, 400),
)


class TooManyRefusals(MigratorError):
    """Too many refused tokens from one address lately (http/throttle.py): 429."""

    code = "too_many_refusals"

    def __init__(self, wait_seconds: float) -> None:
        self.retry_after = max(1, round(wait_seconds))
        super().__init__(
            "Too many requests with a refused API token came from this address; it is not heard "
            f"for {self.retry_after} s.",
            hint="Check the token the client sends (tui-migrator tokens list shows which are active).",
        )


def status_of(error: MigratorError) -> int:
    """400 bad input, 401 no or bad token, 403 role, 404 unknown migration, 409 conflicting
    state, 503 the database failed under the request; 500 for an operation that ran and failed
    (its message says what to do)."""
    if isinstance(error, TooManyRefusals):
        return 429
    for kind, status in _STATUS_OF:
        if isinstance(error, kind):
            return status
    return 500


def error_body(message: str, code: str, hint: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"success": False, "error": message, "errorCode": code}
    if hint:
        body["hint"] = hint
    return body


async def on_migrator_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, MigratorError)
    settings = request.app.state.service.settings
    body = error_body(
        addressed(error.message, settings),
        error.code,
        None if error.hint is None else addressed(error.hint, settings),
    )
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthenticated) else None
    if isinstance(error, TooManyRefusals):
        headers = {"Retry-After": str(error.retry_after)}
    return JSONResponse(body, status_code=status_of(error), headers=headers)


async def on_invalid_request(_request: Request, error: Exception) -> JSONResponse:
    """A request FastAPI could not read into its parameters (a query number that is not one, a
    body that is not a JSON object): one line per problem, naming the parameter."""
    assert isinstance(error, RequestValidationError)
    problems = []
    for detail in error.errors():
        where = ".".join(str(part) for part in detail.get("loc", ()) if part not in ("query", "body"))
        problems.append(f"{where or 'request'}: {detail.get('msg', 'is invalid')}")
    body = error_body(
        "Invalid request: " + "; ".join(problems) + ".",
        BadInput.code,
        "Nothing was done. See the API's documentation at /docs for each parameter.",
    )
    return JSONResponse(body, status_code=400)


async def on_http_error(_request: Request, error: Exception) -> JSONResponse:
    """Starlette's own refusals (no such path, wrong method) in the same JSON form."""
    assert isinstance(error, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(
        error.status_code, "http_error"
    )
    return JSONResponse(
        error_body(str(error.detail), code, None), status_code=error.status_code, headers=error.headers
    )


async def on_unexpected_error(request: Request, error: Exception) -> JSONResponse:
    """The last line of defence: the details go to the server's error log (they may quote a
    value), the client learns only that it happened and where an operator finds them. The
    database failing under the request is said in its words instead (503: try again later)."""
    said = failures.plain(error)
    if said is not None:
        log.warning("the database failed answering %s %s: %s", request.method, request.url.path, said.message)
        return await on_migrator_error(request, said)
    service = request.app.state.service
    try:
        kept = service.record_error(f"HTTP {request.method} {request.url.path}", error)
        hint = f"The details are in the server's error log ({kept.name}); no change was reported."
    except Exception:
        log.exception("an unexpected error could not be written to the error log")
        hint = "The details are in the server's log."
    log.error("unexpected %s answering %s %s", type(error).__name__, request.method, request.url.path)
    return JSONResponse(
        error_body(f"Internal error ({type(error).__name__}).", "internal_error", hint), status_code=500
    )
