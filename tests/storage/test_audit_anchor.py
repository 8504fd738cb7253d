"""A database writer cannot cut the trail's tail, empty it or drop its head unnoticed: a chain
on a set-up database is never empty, and the anchor file outside the database names every entry
this data dir appended."""

from __future__ import annotations

import stat

import pytest
import sqlalchemy as sa

from tests.storage.test_audit import drop_triggers, fill
from tests.support.databases import ADMIN, BOTH_BACKENDS
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import audit as audit_module
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.tables import (
    META_AUDIT_CHAIN,
    META_AUDIT_HEAD,
    audit_table,
    meta_table,
    read_meta,
    write_meta,
)

pytestmark = BOTH_BACKENDS


def _anchor_lines(service: MigratorService) -> list[str]:
    return service._session.audit.anchor.path.read_text().splitlines()  # type: ignore[union-attr]


def test_cutting_the_tail_and_restoring_the_saved_head_is_found_by_the_anchor(
    service: MigratorService,
) -> None:
    fill(service, 3)
    with service.engine.connect() as connection:
        saved_head = read_meta(connection, META_AUDIT_HEAD)
        cut_after = connection.execute(sa.select(sa.func.max(audit_table.c.seq))).scalar_one()
    fill(service, 3)  # the entries the writer wants gone
    drop_triggers(service)
    with service.engine.begin() as connection:
        connection.execute(sa.delete(audit_table).where(audit_table.c.seq > cut_after))
        write_meta(connection, META_AUDIT_HEAD, saved_head or "")

    result = service.verify_audit()
    assert not result.intact
    assert result.first_broken_seq == cut_after + 1
    assert f"#{cut_after + 1} is missing" in (result.problem or "")
    assert str(service._session.audit.anchor.path) in (result.problem or "")  # type: ignore[union-attr]


def test_every_entry_and_the_head_deleted_is_broken(service: MigratorService) -> None:
    fill(service, 2)
    drop_triggers(service)
    with service.engine.begin() as connection:
        connection.execute(sa.delete(audit_table))
        connection.execute(sa.delete(meta_table).where(meta_table.c.name == META_AUDIT_HEAD))
    service._session.audit.anchor = None  # even where this data dir anchored nothing
    result = service.verify_audit()
    assert not result.intact
    assert "no entries" in (result.problem or "")


def test_a_chain_without_its_head_is_broken(service: MigratorService) -> None:
    fill(service, 2)
    with service.engine.begin() as connection:
        connection.execute(sa.delete(meta_table).where(meta_table.c.name == META_AUDIT_HEAD))
    result = service.verify_audit()
    assert not result.intact
    assert "head record is missing" in (result.problem or "")


def test_the_anchor_is_a_private_append_only_file_that_names_each_committed_entry(
    service: MigratorService,
) -> None:
    before = len(_anchor_lines(service)) if service._session.audit.anchor.path.exists() else 0  # type: ignore[union-attr]
    fill(service, 3)
    path = service._session.audit.anchor.path  # type: ignore[union-attr]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    lines = _anchor_lines(service)
    assert len(lines) == before + 3
    # An entry whose transaction rolls back is never anchored.
    with pytest.raises(RuntimeError), serialized_write(service.engine) as writing:
        service._session.audit.append(writing, "test_event", user_id=ADMIN, success=True)
        raise RuntimeError("the audited change failed")
    assert _anchor_lines(service) == lines
    result = service.verify_audit()
    assert result.intact
    assert result.anchored_entries == len(lines)


def test_an_altered_anchor_line_is_reported(service: MigratorService) -> None:
    fill(service, 2)
    path = service._session.audit.anchor.path  # type: ignore[union-attr]
    lines = path.read_text().splitlines()
    chain, seq, _hash, proof = lines[-1].split(" ")
    lines[-1] = f"{chain} {seq} {'0' * 64} {proof}"
    path.write_text("\n".join(lines) + "\n")
    result = service.verify_audit()
    assert not result.intact
    assert f"line {len(lines)}" in (result.problem or "")


def test_a_chain_begun_anew_is_not_held_to_the_old_chains_anchor(service: MigratorService) -> None:
    """A rebuilt demo (or a recreated database file) starts a new chain with a new id; the
    anchor lines of the old one stay in the file and are not this chain's business."""
    fill(service, 2)
    service.rebuild_demo(patients=8, organizations=2, seed=3)
    result = service.verify_audit()
    assert result.intact, result.problem
    assert result.anchored_entries >= 1


def test_the_chains_identity_record_removed_is_broken(service: MigratorService) -> None:
    """Without it, a writer could start a 'new' chain and escape the anchor."""
    fill(service, 2)
    with service.engine.begin() as connection:
        connection.execute(sa.delete(meta_table).where(meta_table.c.name == META_AUDIT_CHAIN))
    result = service.verify_audit()
    assert not result.intact
    assert "identity record is missing" in (result.problem or "")


@pytest.mark.parametrize("when", ["after the head is read", "while the entries are read"])
def test_an_entry_appended_while_the_chain_is_checked_is_no_tampering(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """Another process appends an entry (and anchors it) in the middle of a check: the check
    reads the anchor first and the database in one snapshot, so the new entry is in neither or
    in both. Before, it was reported missing (the anchor, read last, named it) or the head was
    ahead of the entries (PostgreSQL read them in separate snapshots): a false alarm of
    tampering whenever the tool wrote while `GET /audit` checked."""
    fill(service, 2)
    trail = service._session.audit
    appended: list[object] = []

    def append_once() -> None:
        if not appended:
            appended.append(trail.record("test_appended", user_id=ADMIN, success=True))

    if when == "after the head is read":
        real_read_meta = audit_module.read_meta

        def read_meta_then_append(connection: sa.Connection, name: str) -> str | None:
            value = real_read_meta(connection, name)
            if name == META_AUDIT_HEAD:
                append_once()
            return value

        monkeypatch.setattr(audit_module, "read_meta", read_meta_then_append)
    else:
        real_entry = audit_module._entry_from_row

        def entry_then_append(row: object) -> object:
            append_once()
            return real_entry(row)  # type: ignore[arg-type]

        monkeypatch.setattr(audit_module, "_entry_from_row", entry_then_append)
    during = trail.verify()
    monkeypatch.undo()
    assert appended
    assert during.intact, during.problem
    after = trail.verify()
    assert after.intact and after.verified_entries == during.verified_entries + 1
