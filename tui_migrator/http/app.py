"""The seed's API at /api/data-migration: the eight operations, and those the seed lacks (pause,
continue, resume, failed records, report, data keys and their rotation), over the same service
as the CLI and the TUI.

Every response body is built by the service's views (service/views.py), the ones the CLI prints
with ``--json``: one contract for every face. Each request carries an operator's API token
(``Authorization: Bearer``); it is checked by the service, which then acts as that operator, so
their role decides and the audit trail names them, as on the command line. The app holds no
state of its own beyond the service it was given: migrations run in detached workers, which
outlive a restart of the server.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from tui_migrator.common.config_file import FILE_KEYS, read_config_object
from tui_migrator.common.errors import BadInput, MigratorError, Unauthenticated
from tui_migrator.common.migration_config import MigrationConfig
from tui_migrator.http import errors
from tui_migrator.http.throttle import RefusalThrottle
from tui_migrator.service.facade import MigratorService
from tui_migrator.service.key_rotation import ROTATION_OPTIONS
from tui_migrator.service.views import (
    audit_data,
    cancel_data,
    failed_data,
    keys_data,
    list_data,
    rollback_started_data,
    start_data,
    status_data,
)

PREFIX = "/api/data-migration"
# A request body is a small JSON object (a configuration, a reason); anything much larger is
# refused before it is read.
MAX_BODY_BYTES = 64 * 1024
# How long a cancel waits for the worker to stop before it answers "cancelling".
CANCEL_WAIT_SECONDS = 5.0

START_EXAMPLE = {
    "batchSize": 100,
    "maxConcurrency": 5,
    "dryRun": False,
    "dataCategories": ["DEMOGRAPHICS", "MOTOR_SYMPTOMS", "MEDICATION_DATA"],
    "organizationIds": ["org_123", "org_456"],
    "skipIntegrityChecks": False,
    "createBackups": True,
}
# A key rotation's body: the organizations whose keys it rotates, and the options it takes.
ROTATE_KEYS = tuple(
    str(MigrationConfig.model_fields[name].alias) for name in ("organization_ids", *ROTATION_OPTIONS)
)
ROTATE_EXAMPLE = {"organizationIds": ["org_123"], "batchSize": 1000, "maxConcurrency": 2}


class CancelRequest(BaseModel):
    """Why the migration is cancelled: kept in its record and the audit trail."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, examples=["Emergency maintenance required"])


class RollbackRequest(BaseModel):
    """A rollback rewrites every value the migration encrypted: it must be confirmed."""

    model_config = ConfigDict(extra="forbid")
    confirm_rollback: bool = Field(alias="confirmRollback", examples=[True])


def create_app(
    service: MigratorService,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    throttle: RefusalThrottle | None = None,
) -> FastAPI:
    """The API over ``service`` (the server's own: it only checks tokens; each request acts as
    its token's operator)."""
    app = FastAPI(
        title="tui-migrator",
        summary="Encrypt plaintext medical records in place, batch by batch, with backups, "
        "rollback and a tamper-evident audit trail.",
        version="1",
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.service = service
    app.state.throttle = throttle or RefusalThrottle()
    app.add_exception_handler(MigratorError, errors.on_migrator_error)
    app.add_exception_handler(RequestValidationError, errors.on_invalid_request)
    app.add_exception_handler(StarletteHTTPException, errors.on_http_error)
    app.add_exception_handler(Exception, errors.on_unexpected_error)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    _routes(app)
    return app


def config_schema() -> dict[str, Any]:
    """MigrationConfig's JSON schema by its camelCase keys, its definitions inlined (OpenAPI
    resolves references against its own components, not a schema's ``$defs``)."""
    schema = MigrationConfig.model_json_schema(by_alias=True)
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref", "")
            if reference.startswith("#/$defs/"):
                return inline(definitions[reference.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return dict(inline(schema))


def rotation_schema() -> dict[str, Any]:
    """The part of MigrationConfig's schema a key rotation's body may hold."""
    schema = config_schema()
    properties = {key: value for key, value in schema["properties"].items() if key in ROTATE_KEYS}
    return {
        **schema,
        "title": "KeyRotation",
        "description": "Every key optional: no organizationIds rotates every organization with keys.",
        "properties": properties,
    }


def rotation_request(body: Any) -> tuple[list[str], dict[str, Any]]:
    """The organizations and options of a rotation's body, read as /start reads its body (the
    same keys, types and checks), refusing the settings a rotation does not take by the names
    the body gave them."""
    if isinstance(body, dict):
        not_taken = [key for key in body if key in FILE_KEYS and key not in ROTATE_KEYS]
        if not_taken:
            raise BadInput(
                f"A key rotation does not take {', '.join(not_taken)}; nothing was started.",
                hint=f"Its keys are {', '.join(ROTATE_KEYS)} (each optional).",
            )
    values = read_config_object({} if body is None else body, "the request body")
    organizations: list[str] = values.pop("organization_ids", [])
    return organizations, values


def operator(request: Request) -> Iterator[MigratorService]:
    """The service acting as the operator of the request's API token (refused, and audited,
    without a valid one)."""
    server: MigratorService = request.app.state.service
    throttle: RefusalThrottle = request.app.state.throttle
    address = request.client.host if request.client else "unknown"
    wait = throttle.wait_seconds(address)
    if wait:
        raise errors.TooManyRefusals(wait)
    try:
        identity = server.authenticate_api_token(request.headers.get("authorization"))
    except Unauthenticated:
        throttle.refused(address)
        raise
    acting = server.acting_as(identity.operator)
    try:
        yield acting
    finally:
        acting.close()


Operator = Annotated[MigratorService, Depends(operator)]


def ok(data: dict[str, Any]) -> dict[str, Any]:
    return {"success": True, "data": data}


def _split(values: list[str] | None) -> list[str] | None:
    """A list parameter given repeated (?a=x&a=y) or comma-separated (?a=x,y)."""
    if values is None:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _routes(app: FastAPI) -> None:
    @app.post(
        f"{PREFIX}/start",
        tags=["migrations"],
        summary="Start a new migration",
        # The body is read as --config reads a file (common/config_file.py: the same keys,
        # types and checks); its schema is MigrationConfig's.
        openapi_extra={
            "requestBody": {
                "content": {"application/json": {"schema": config_schema(), "example": START_EXAMPLE}}
            }
        },
    )
    def start(
        service: Operator, config: Annotated[Any, Body(include_in_schema=False)] = None
    ) -> dict[str, Any]:
        """Starts the migration in a detached worker and answers at once; follow it with
        ``GET /{migrationId}``. The body holds the seed's MigrationConfig keys, all optional."""
        values = read_config_object({} if config is None else config, "the request body")
        record = service.start(values, detach=True)
        return ok(start_data(record, service.settings))

    @app.get(f"{PREFIX}/estimate", tags=["migrations"], summary="Estimate time and resources")
    def estimate(
        service: Operator,
        batch_size: Annotated[str | None, Query(alias="batchSize")] = None,
        max_concurrency: Annotated[int | None, Query(alias="maxConcurrency")] = None,
        organization_ids: Annotated[list[str] | None, Query(alias="organizationIds")] = None,
        data_categories: Annotated[list[str] | None, Query(alias="dataCategories")] = None,
        create_backups: Annotated[bool | None, Query(alias="createBackups")] = None,
        sweep_later: Annotated[bool | None, Query(alias="sweepLater")] = None,
    ) -> dict[str, Any]:
        """Measured on this database by a calibration sample (nothing of it is kept)."""
        given = {
            "batch_size": batch_size,
            "max_concurrency": max_concurrency,
            "organization_ids": _split(organization_ids),
            "data_categories": _split(data_categories),
            "create_backups": create_backups,
            "sweep_later": sweep_later,
        }
        return ok(
            service.estimate({key: value for key, value in given.items() if value is not None}).to_json_data()
        )

    @app.get(f"{PREFIX}/list", tags=["migrations"], summary="List migrations")
    def listing(
        service: Operator,
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
        status: str | None = None,
    ) -> dict[str, Any]:
        records, everything = service.list_migrations(limit=limit, status=status)
        return ok(list_data(records, everything=everything))

    @app.get(f"{PREFIX}/audit", tags=["audit"], summary="The migration audit trail")
    def audit(
        service: Operator,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
        migration_id: Annotated[str | None, Query(alias="migrationId")] = None,
    ) -> dict[str, Any]:
        """``secureAuditTrail`` is the result of recomputing the whole hash chain now."""
        verification = service.verify_audit(record=False)
        page = service.audit_entries(limit=limit, migration_id=migration_id)
        return ok(audit_data(page.entries, page.total_entries, verification))

    @app.get(f"{PREFIX}/health", tags=["system"], summary="Engine, keys, disk and recent activity")
    def health(service: Operator) -> dict[str, Any]:
        return ok(service.health().to_json_data())

    # Before /{migration_id}, which would take "keys" for a migration's id.
    @app.get(f"{PREFIX}/keys", tags=["keys"], summary="Data keys and the master key's fingerprint")
    def data_keys(service: Operator) -> dict[str, Any]:
        """Each organization's data keys (generation, status, who made it and when), never key
        material: the object ``keys list --json`` prints."""
        return ok(
            keys_data(
                service.data_keys(),
                master_key_fingerprint=service.master_key_fingerprint,
                master_key_source=service.master_key_source,
            )
        )

    # Rotating the master key (keys rotate-master) is not offered here: it reads the new key from
    # a file on the server, whose making, permissions and safekeeping are the concern of the
    # operator on that machine, not of a client.
    @app.post(
        f"{PREFIX}/keys/rotate",
        tags=["keys"],
        summary="Rotate data keys",
        openapi_extra={
            "requestBody": {
                "content": {"application/json": {"schema": rotation_schema(), "example": ROTATE_EXAMPLE}}
            }
        },
    )
    def rotate_keys(
        service: Operator, body: Annotated[Any, Body(include_in_schema=False)] = None
    ) -> dict[str, Any]:
        """A new data key generation for each organization named (every one with keys when none
        is), and a key rotation that re-seals every older token with it, in a detached worker;
        answers at once, as /start does. Follow it with ``GET /{migrationId}`` (its ``kind`` is
        ``rotation``)."""
        organizations, options = rotation_request(body)
        record = service.rotate_keys(organizations, options, detach=True)
        return ok(start_data(record, service.settings))

    @app.get(f"{PREFIX}/{{migration_id}}", tags=["migrations"], summary="A migration's status and progress")
    def status(service: Operator, migration_id: str) -> dict[str, Any]:
        record = service.status(migration_id)
        sweep = service.sweep_status(migration_id)
        return ok(status_data(record, disk_path=service.settings.data_dir, sweep=sweep))

    @app.post(f"{PREFIX}/{{migration_id}}/cancel", tags=["control"], summary="Cancel a running migration")
    def cancel(service: Operator, migration_id: str, request: CancelRequest) -> dict[str, Any]:
        """In-flight batches finish, then the worker stops; encrypted rows stay encrypted."""
        record = service.cancel(migration_id, request.reason, wait_seconds=CANCEL_WAIT_SECONDS)
        return ok(cancel_data(record))

    @app.post(f"{PREFIX}/{{migration_id}}/rollback", tags=["control"], summary="Roll a migration back")
    def rollback(service: Operator, migration_id: str, request: RollbackRequest) -> dict[str, Any]:
        """Restores every value the migration encrypted, in a background process; follow it
        with ``GET /{migrationId}`` (its ``rollback`` object)."""
        record = service.rollback_in_background(migration_id, confirm=request.confirm_rollback)
        return ok(rollback_started_data(record, service.settings))

    @app.post(f"{PREFIX}/{{migration_id}}/pause", tags=["control"], summary="Pause between batches")
    def pause(service: Operator, migration_id: str) -> dict[str, Any]:
        return ok(status_data(service.pause(migration_id)))

    @app.post(f"{PREFIX}/{{migration_id}}/continue", tags=["control"], summary="Continue a paused migration")
    def continue_(service: Operator, migration_id: str) -> dict[str, Any]:
        return ok(status_data(service.continue_(migration_id)))

    @app.post(
        f"{PREFIX}/{{migration_id}}/resume", tags=["control"], summary="Resume from the last checkpoint"
    )
    def resume(service: Operator, migration_id: str) -> dict[str, Any]:
        """A cancelled, failed or interrupted migration, in a detached worker."""
        return ok(start_data(service.resume(migration_id, detach=True), service.settings))

    @app.get(f"{PREFIX}/{{migration_id}}/failed", tags=["migrations"], summary="Records that failed")
    def failed(service: Operator, migration_id: str) -> dict[str, Any]:
        return ok(failed_data(migration_id, service.failed_records(migration_id)))

    @app.get(f"{PREFIX}/{{migration_id}}/report", tags=["migrations"], summary="Completion report")
    def report(service: Operator, migration_id: str) -> dict[str, Any]:
        return ok(service.report(migration_id))

    @app.get(
        f"{PREFIX}/{{migration_id}}/evidence",
        tags=["migrations"],
        summary="The signed evidence bundle for auditors, as a zip",
        response_class=Response,
        responses={200: {"content": {"application/zip": {}}}},
    )
    def evidence(service: Operator, migration_id: str) -> Response:
        """The files ``report ID --evidence DIR`` writes, zipped; unzipped, ``tui-migrator
        evidence verify DIR`` checks them with the master key. Written to a private temporary
        folder of the server's, removed once zipped."""
        with tempfile.TemporaryDirectory(prefix="tui-migrator-evidence-") as scratch:
            # Not named by the id from the URL (it is not checked yet): by the export, which
            # refuses an id no migration has before it writes anything.
            folder = Path(scratch) / "bundle"
            service.export_evidence(migration_id, folder)
            archive = io.BytesIO()
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
                for file in sorted(folder.iterdir()):
                    bundle.write(file, f"{migration_id}/{file.name}")
        return Response(
            archive.getvalue(),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{migration_id}-evidence.zip"'},
        )


class BodyLimit:
    """Refuses a request whose body is larger than ``limit`` bytes (413), by its declared length
    or, without one, as it arrives: nothing larger is ever held in memory."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        received = 0

        async def limited() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = (
            b'{"success":false,"error":"The request body is larger than '
            + str(self.limit).encode()
            + b' bytes.","errorCode":"request_too_large"}'
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
