"""``tui-migrator serve``: the API on uvicorn, safe by default.

It listens on the loopback interface unless told otherwise, and another address needs TLS (a
certificate and its key) or the operator's explicit word that a TLS-terminating proxy stands
in front (``--insecure-behind-proxy``): tokens and the estimate's organization names must not
cross a network in the clear. The server's own OS user opens the database (the tool must be
set up in it); each request then acts as the operator of its token.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from tui_migrator.common.errors import BadInput
from tui_migrator.common.settings import Settings
from tui_migrator.http.app import MAX_BODY_BYTES, PREFIX, create_app
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.database import redacted

log = logging.getLogger("tui_migrator.http")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8750


@dataclass(frozen=True)
class ServeOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    certfile: Path | None = None
    keyfile: Path | None = None
    insecure_behind_proxy: bool = False
    max_body_bytes: int = MAX_BODY_BYTES

    @property
    def tls(self) -> bool:
        return self.certfile is not None

    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{PREFIX}"


def check_options(options: ServeOptions) -> None:
    """Refuse, before anything listens, what would expose the API or fail later."""
    if not 1 <= options.port <= 65535:
        raise BadInput(f"--port {options.port} is not a TCP port (1 to 65535).")
    if (options.certfile is None) != (options.keyfile is None):
        raise BadInput(
            "TLS needs both --certfile and --keyfile.",
            hint="Give the certificate (PEM) with --certfile and its private key with --keyfile.",
        )
    for option, path in (("--certfile", options.certfile), ("--keyfile", options.keyfile)):
        if path is not None and not (path.is_file() and os.access(path, os.R_OK)):
            raise BadInput(
                f"{option} {path}: no readable file there.", hint="Check the path and its permissions."
            )
    if not _is_loopback(options.host) and not options.tls and not options.insecure_behind_proxy:
        raise BadInput(
            f"Listening on {options.host} without TLS would send API tokens across the network in the clear.",
            hint="Give --certfile and --keyfile, or, with a TLS-terminating proxy in front, "
            "--insecure-behind-proxy; or keep the default --host 127.0.0.1.",
        )


def serve(settings: Settings, options: ServeOptions) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM: uvicorn finishes the requests in flight)."""
    check_options(options)
    with MigratorService.open(settings) as service:
        app = create_app(service, max_body_bytes=options.max_body_bytes)
        sys.stderr.write(
            f"Serving the tui-migrator API of {redacted(service.engine.url)} at {options.url()} "
            f"(documentation: {options.url().removesuffix(PREFIX)}/docs), as {service.user}. "
            "Ctrl-C stops it; running migrations go on in their workers.\n"
        )
        uvicorn.run(
            app,
            host=options.host,
            port=options.port,
            ssl_certfile=str(options.certfile) if options.certfile else None,
            ssl_keyfile=str(options.keyfile) if options.keyfile else None,
            # Behind a proxy, the client's address comes from its X-Forwarded-For header.
            proxy_headers=options.insecure_behind_proxy,
            server_header=False,
            # uvicorn's own log to stderr; its access log names methods, paths and statuses
            # (ids and parameters, never a record value or a token).
            access_log=True,
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
