"""No key material reaches the database, the logs or the CLI's output; nor does an API token,
beyond the one output that creates it."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from tests.support.databases import make_settings
from tui_migrator.cli.main import main
from tui_migrator.common.errors import Unauthenticated
from tui_migrator.common.settings import ENV_MASTER_KEY
from tui_migrator.crypto.ciphers import RowContext
from tui_migrator.crypto.keys import generate_master_key
from tui_migrator.service.facade import MigratorService


def forms(secret: bytes) -> list[bytes]:
    """The ways a key could be written down: raw, hex and base64 (standard and URL-safe)."""
    return [
        secret,
        secret.hex().encode(),
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
    ]


def database_bytes(url: str) -> list[bytes]:
    engine = sa.create_engine(url)
    found: list[bytes] = []
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            for table in metadata.tables.values():
                for row in connection.execute(sa.select(table)):
                    for value in row:
                        if isinstance(value, bytes):
                            found.append(value)
                        elif value is not None:
                            found.append(str(value).encode())
    finally:
        engine.dispose()
    return found


def test_no_key_material_in_database_logs_or_output(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    generated: list[bytes] = []
    original_generate = AESGCM.generate_key

    def recording_generate(bit_length: int) -> bytes:
        key = original_generate(bit_length)
        generated.append(key)
        return key

    monkeypatch.setattr(AESGCM, "generate_key", staticmethod(recording_generate))
    master = generate_master_key()
    monkeypatch.setenv(ENV_MASTER_KEY, master)
    settings = make_settings(tmp_path, master_key=None)
    caplog.set_level(logging.DEBUG)
    where = ["--db", settings.effective_database_url, "--data-dir", str(settings.data_dir), "-v"]
    assert main(["demo", "--patients", "20", "--organizations", "2", "--yes", *where]) == 0
    demo_output = capsys.readouterr()
    assert main(["tokens", "create", "--json", *where]) == 0
    # Shown once, on creation: that output is the one place it may be.
    token: str = json.loads(capsys.readouterr().out)["data"]["token"]
    token_secret = token[len("tmtok_tok_0123456789ab_") :]
    with MigratorService.open(
        settings.model_copy(update={"master_key": SecretStr(master)}), user="alice"
    ) as service:
        cipher = service.value_cipher()
        for organization in ("org_a", "org_b", "org_c"):
            cipher.encrypt("value", RowContext("demographics", "notes", (1,), organization))
        assert service.authenticate_api_token(f"Bearer {token}").operator == "alice"
        with pytest.raises(Unauthenticated):
            service.authenticate_api_token(token[:-1] + ("x" if token[-1] != "x" else "y"))
    for command in (
        ["health", "--json"],
        ["audit", "--verify", "--json"],
        ["keys", "list", "--json"],
        ["tokens", "list", "--json"],
        ["mapping"],
    ):
        assert main([*command, *where]) == 0
    output = capsys.readouterr()
    assert len(generated) == 3  # one data key per organization, captured when generated
    secrets = [
        base64.b64decode(master),
        *generated,
        base64.urlsafe_b64decode(token_secret + "="),
        token.encode(),
        token_secret.encode(),
    ]
    haystacks = [
        *database_bytes(settings.effective_database_url),
        caplog.text.encode(),
        output.out.encode(),
        output.err.encode(),
        demo_output.out.encode(),
        demo_output.err.encode(),
    ]
    for secret in secrets:
        for form in forms(secret):
            assert not any(form in haystack for haystack in haystacks)


@pytest.mark.postgresql
def test_database_password_never_reaches_output_logs_errors_or_a_command_line(
    empty_postgres_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import secrets as random_secrets

    from tui_migrator.engine import detached as worker

    password = f"pw-{random_secrets.token_hex(12)}"
    # The test cluster trusts 127.0.0.1, so the password is accepted and never checked.
    url = sa.make_url(empty_postgres_database).set(password=password).render_as_string(hide_password=False)
    caplog.set_level(logging.DEBUG)
    where = ["--db", url, "--data-dir", str(tmp_path / "data"), "-v"]
    assert main(["demo", "--patients", "12", "--organizations", "2", "--yes", "--json", *where]) == 0
    for command in (
        ["health", "--json"],
        ["start", "--yes", "--json", "--batch-size", "50"],
        ["list", "--json"],
        ["audit", "--verify", "--json"],
    ):
        assert main([*command, *where]) == 0, command
    missing = sa.make_url(url).set(database="no_such_database").render_as_string(hide_password=False)
    assert main(["health", "--json", "--db", missing, "--data-dir", str(tmp_path / "data")]) == 2
    output = capsys.readouterr()
    assert "no_such_database" in output.out  # the error is there, and clear

    spawned: list[tuple[list[str], dict[str, str]]] = []

    class RecordingPopen:
        pid = 4242

        def __init__(self, arguments: list[str], **options: object) -> None:
            spawned.append((arguments, options["env"]))  # type: ignore[arg-type]

    monkeypatch.setattr(worker.subprocess, "Popen", RecordingPopen)
    settings = make_settings(tmp_path, database_url=url)
    worker.spawn(settings, "migration_x")
    arguments, environment = spawned[0]
    assert environment["TUI_MIGRATOR_DB"] == url  # handed over, but not where ps shows it

    haystacks = [
        *database_bytes(url),
        caplog.text.encode(),
        output.out.encode(),
        output.err.encode(),
        " ".join(arguments).encode(),
    ]
    assert not [haystack for haystack in haystacks if password.encode() in haystack]
