"""The ``keys`` commands: list data keys, generate a master key, rotate data keys (a rotation
migration) and rotate the master key. Never any key material, except a generated key asked for
on stdout."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from tui_migrator.cli import migration_commands
from tui_migrator.cli.confirm import confirm
from tui_migrator.cli.output import Result
from tui_migrator.cli.stop_signals import stops_cancel
from tui_migrator.crypto.keys import generate_master_key, write_key_file
from tui_migrator.service.facade import MigratorService
from tui_migrator.service.key_rotation import ROTATION_OPTIONS
from tui_migrator.service.views import keys_data, start_data
from tui_migrator.storage.migration_records import MigrationRecord


def keys(service: MigratorService, args: argparse.Namespace) -> Result:
    if args.keys_action == "rotate":
        return keys_rotate(service, args)
    if args.keys_action == "rotate-master":
        return keys_rotate_master(service, args)
    return keys_list(service, args)


def keys_list(service: MigratorService, _args: argparse.Namespace) -> Result:
    infos = service.data_keys()
    table = Table(
        title=f"Data keys (master key fingerprint {service.master_key_fingerprint[:12]})",
        title_justify="left",
    )
    for heading in ("key id", "organization", "algorithm", "status", "created (UTC)", "by"):
        table.add_column(heading)
    for info in infos:
        table.add_row(
            info.key_id,
            info.organization_id,
            info.algorithm,
            info.status,
            info.created_at.isoformat(timespec="seconds"),
            info.created_by,
        )
    return Result(
        data=keys_data(
            infos,
            master_key_fingerprint=service.master_key_fingerprint,
            master_key_source=service.master_key_source,
        ),
        text=[table],
    )


def keys_generate(args: argparse.Namespace) -> Result:
    key = generate_master_key()
    if args.output:
        path = Path(args.output)
        write_key_file(path, key)
        return Result(
            data={"keyFile": str(path), "message": "Master key written with mode 0600"},
            text=[
                Text(
                    f"Master key written to {path} (mode 0600). Keep a copy somewhere safe: "
                    "without it, encrypted data cannot be read."
                )
            ],
        )
    # Asked for on stdout (to pipe into a secret store); the value is never logged.
    return Result(data={"masterKey": key}, text=[Text(key)])


def keys_rotate(service: MigratorService, args: argparse.Namespace) -> Result:
    organizations: list[str] = args.organization_ids or []
    options: dict[str, Any] = {
        name: getattr(args, name) for name in ROTATION_OPTIONS if getattr(args, name, None) is not None
    }
    if not args.yes:
        named = ", ".join(organizations) if organizations else "every organization"
        confirm(
            f"Make a new data key for {named} and re-seal every token under an older one?",
            nothing_done=migration_commands.NOTHING_STARTED,
        )
    if args.detach:
        record = service.rotate_keys(organizations, options, detach=True)
        return Result(
            data=start_data(record, service.settings),
            text=[
                Text(
                    f"Started key rotation {record.id} in a background worker. Follow it with: "
                    f"tui-migrator status {record.id}"
                )
            ],
        )
    with (
        migration_commands.progress_bar(args.json) as show_progress,
        stops_cancel(service) as remember,
    ):

        def on_progress(record: MigrationRecord) -> None:
            remember(record.id)
            show_progress(record)

        record = service.rotate_keys(organizations, options, on_progress=on_progress)
    return migration_commands.final_result(service, record)


def keys_rotate_master(service: MigratorService, args: argparse.Namespace) -> Result:
    path: Path = args.new_key_file
    if not args.yes:
        confirm(
            f"Re-wrap every data key under the master key in {path}? Afterwards the database opens "
            "with that key only.",
            nothing_done="nothing was changed",
        )
    rotation = service.rotate_master_key(path)
    use = (
        f"From now on open this database with that key: set TUI_MIGRATOR_MASTER_KEY_FILE={path} "
        f"(or --master-key-file {path}), or put it where the old key file was. Keep the old key only to "
        "verify evidence bundles it signed."
    )
    return Result(
        data={
            "oldFingerprint": rotation.old_fingerprint,
            "newFingerprint": rotation.new_fingerprint,
            "dataKeysRewrapped": rotation.data_keys,
            "newKeyFile": str(path),
            "message": use,
        },
        text=[
            Text(
                f"Master key rotated: {rotation.data_keys} data keys re-wrapped, fingerprint "
                f"{rotation.old_fingerprint[:12]} → {rotation.new_fingerprint[:12]}."
            ),
            Text(use),
        ],
    )
