"""The migration commands driven through the real CLI in-process: the seed's JSON shapes,
exit codes, confirmations, and proof that refusals write nothing."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.cli import run
from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import Background, latest, latest_is, raw_dump, wait_for
from tui_migrator.common.categories import CATEGORY_NAMES
from tui_migrator.common.settings import Settings
from tui_migrator.engine import batches as batches_module
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.database import database_file
from tui_migrator.storage.migration_status import Status

FAST = ["--batch-size", "40"]

pytestmark = BOTH_BACKENDS


def start_completed(settings: Settings, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, payload = run(settings, capsys, "start", "--yes", *FAST)
    assert code == 0, payload
    return payload["data"]


def migration_count(settings: Settings, capsys: pytest.CaptureFixture[str]) -> int:
    code, payload = run(settings, capsys, "list")
    assert code == 0, payload
    return payload["data"]["summary"]["total"]


def table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def slow_batches(monkeypatch: pytest.MonkeyPatch, seconds: float = 0.03) -> None:
    import time

    real = batches_module.TableBatches.process

    def slow(self, rows, *, after):  # type: ignore[no-untyped-def]
        time.sleep(seconds)
        return real(self, rows, after=after)

    monkeypatch.setattr(batches_module.TableBatches, "process", slow)


def assert_status_shape(data: dict[str, Any]) -> None:
    """The seed's status object: every field name it shows, under the same name."""
    assert data["id"] == data["migrationId"]
    for field in ("status", "progress", "timing", "config", "errorMessage", "isComplete", "canRollback"):
        assert field in data, field
    for field in ("percentage", "processedRecords", "totalRecords", "encryptedRecords", "failedRecords"):
        assert field in data["progress"], field
    for field in ("startedAt", "completedAt", "elapsedMinutes", "estimatedRemainingMinutes"):
        assert field in data["timing"], field
    for field in ("batchSize", "maxConcurrency", "dataCategories"):
        assert field in data["config"], field


# -- estimate ---------------------------------------------------------------------------------


def test_estimate_json_has_the_seed_fields_plus_the_measured_extras(
    settings: Settings, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    before = raw_dump(engine)
    tables_before = table_names(engine)
    code, payload = run(settings, capsys, "estimate", *FAST)
    assert code == 0, payload
    assert payload["success"] is True
    data = payload["data"]
    assert isinstance(data["estimatedRecords"], int) and data["estimatedRecords"] > 400
    assert isinstance(data["estimatedTimeMinutes"], int | float)
    assert isinstance(data["estimatedStorageIncrease"], str)
    assert data["estimatedStorageIncrease"].endswith("%")
    assert set(data["recommendations"]) >= {
        "optimalBatchSize",
        "recommendedConcurrency",
        "suggestedMaintenanceWindow",
        "backupRecommendation",
    }
    assert set(data["riskAssessment"]) >= {"complexity", "downtime", "rollbackTime", "dataIntegrity"}
    assert isinstance(data["estimatedTimeSeconds"], int | float) and data["estimatedTimeSeconds"] > 0
    assert set(data["byCategory"]) == set(CATEGORY_NAMES) and len(data["byCategory"]) == 9
    assert sum(data["byCategory"].values()) == data["estimatedRecords"]
    assert data["byOrganization"] and sum(data["byOrganization"].values()) == data["estimatedRecords"]
    assert data["preflightChecks"]
    for check in data["preflightChecks"]:
        assert set(check) >= {"check", "passed", "detail"}
        assert check["passed"] is True, check
    assert data["canStart"] is True
    sweep = data["sweep"]
    if engine.dialect.name == "sqlite":
        # Measured on a probe file beside the database, which is gone again (listing below).
        assert sweep["automatic"] is True and sweep["putOff"] is False and sweep["enoughFreeDisk"] is True
        assert sweep["estimatedSeconds"] >= 0 and "writes wait" in sweep["summary"]
        assert sweep["databaseBytesAfter"] > database_file(engine).stat().st_size
        assert sweep["freeBytesNeeded"] == 2 * sweep["databaseBytesAfter"]
    else:
        assert sweep["automatic"] is False and sweep["estimatedSeconds"] is None
        assert "VACUUM FULL" in sweep["note"]

    assert raw_dump(engine) == before
    assert table_names(engine) == tables_before
    assert migration_count(settings, capsys) == 0
    if engine.dialect.name == "sqlite":
        assert not [path for path in database_file(engine).parent.iterdir() if "probe" in path.name]


def test_estimate_narrowed_by_category_and_organization(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    _, everything = run(settings, capsys, "estimate", *FAST)
    code, payload = run(
        settings,
        capsys,
        "estimate",
        *FAST,
        "--category",
        "DEMOGRAPHICS",
        "--organization",
        "org_pitie_paris",
    )
    assert code == 0, payload
    data = payload["data"]
    assert list(data["byCategory"]) == ["DEMOGRAPHICS"]
    assert 0 < data["estimatedRecords"] == data["byCategory"]["DEMOGRAPHICS"]
    assert data["estimatedRecords"] < everything["data"]["byCategory"]["DEMOGRAPHICS"]
    assert set(data["byOrganization"]) == {"org_pitie_paris"}


# -- start, status, list ----------------------------------------------------------------------


def test_start_prints_the_final_completed_status_object(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, payload = run(settings, capsys, "start", "--yes", *FAST)
    assert code == 0, payload
    assert payload["success"] is True
    data = payload["data"]
    assert_status_shape(data)
    assert data["id"].startswith("migration_")
    assert data["status"] == "completed"
    progress = data["progress"]
    assert progress["percentage"] == 100
    assert progress["processedRecords"] == progress["totalRecords"] == progress["encryptedRecords"] > 400
    assert progress["failedRecords"] == 0
    timing = data["timing"]
    assert timing["startedAt"] and timing["completedAt"]
    assert isinstance(timing["elapsedMinutes"], int | float)
    assert config_matches(data["config"], batch_size=40)
    assert data["errorMessage"] is None
    assert data["isComplete"] is True
    assert data["canRollback"] is True


def test_sweep_later_is_forecast_as_put_off_kept_with_the_migration_and_left_to_sweep(
    settings: Settings, capsys: pytest.CaptureFixture[str], engine: sa.Engine
) -> None:
    sqlite = engine.dialect.name == "sqlite"
    code, payload = run(settings, capsys, "estimate", "--sweep-later", *FAST)
    assert code == 0, payload
    sweep = payload["data"]["sweep"]
    assert sweep["automatic"] is False
    if sqlite:
        # Measured as ever: the operator's `sweep ID` holds the writes as long.
        assert sweep["putOff"] is True and sweep["estimatedSeconds"] >= 0
        assert sweep["summary"].startswith("put off: `sweep ID` when you choose")
        assert "old plaintext stays" in sweep["note"]
    else:
        assert sweep["putOff"] is False and "VACUUM FULL" in sweep["note"]

    code, payload = run(settings, capsys, "start", "--yes", "--sweep-later", *FAST)

    assert code == 0, payload
    data = payload["data"]
    assert data["status"] == "completed" and data["config"]["sweepLater"] is True
    code, report = run(settings, capsys, "report", data["id"])
    assert code == 0, report
    assert report["data"]["sweep"]["swept"] is False
    assert report["data"]["sweep"]["command"].startswith(f"tui-migrator sweep {data['id']}")
    # A file's key and an option: the option has the last word, either way.
    code, payload = run(settings, capsys, "estimate", "--no-sweep-later", *FAST)
    assert code == 0 and payload["data"]["sweep"]["putOff"] is False


def config_matches(config: dict[str, Any], *, batch_size: int) -> bool:
    assert config["batchSize"] == batch_size
    assert config["maxConcurrency"] == 2
    assert config["dataCategories"] == []
    assert config["organizationIds"] == []
    assert config["createBackups"] is True
    # This tool's keys are left out while unset: the seed's configuration, as the seed has it.
    assert "sweepLater" not in config and "window" not in config
    assert config["dryRun"] is False
    return True


def test_status_and_list_show_the_seed_shapes_and_filter_by_status(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    started = start_completed(settings, capsys)
    migration_id = started["id"]

    code, payload = run(settings, capsys, "status", migration_id)
    assert code == 0, payload
    status = payload["data"]
    assert_status_shape(status)
    assert status["id"] == migration_id and status["status"] == "completed"
    assert status["progress"] == started["progress"]

    code, payload = run(settings, capsys, "list")
    assert code == 0, payload
    listing = payload["data"]
    assert len(listing["migrations"]) == 1
    item = listing["migrations"][0]
    assert set(item) >= {
        "id",
        "status",
        "startedAt",
        "completedAt",
        "totalRecords",
        "processedRecords",
        "encryptedRecords",
        "failedRecords",
        "errorMessage",
        "config",
    }
    assert item["id"] == migration_id and item["status"] == "completed"
    assert item["totalRecords"] == item["processedRecords"] == item["encryptedRecords"]
    assert item["failedRecords"] == 0 and item["errorMessage"] is None
    assert item["config"]["batchSize"] == 40
    assert listing["summary"]["total"] == 1
    assert listing["summary"]["byStatus"]["completed"] == 1
    assert {"completed", "running", "failed", "cancelled"} <= set(listing["summary"]["byStatus"])
    assert sum(listing["summary"]["byStatus"].values()) == 1

    code, payload = run(settings, capsys, "list", "--status", "completed")
    assert code == 0 and [m["id"] for m in payload["data"]["migrations"]] == [migration_id]
    code, payload = run(settings, capsys, "list", "--status", "failed")
    assert code == 0 and payload["data"]["migrations"] == []
    assert payload["data"]["summary"]["total"] == 1  # the summary counts every migration, whatever the filter

    code, payload = run(settings, capsys, "list", "--status", "bogus")
    assert code == 2
    assert payload["success"] is False and payload["errorCode"] == "bad_input"
    assert "bogus" in payload["error"]


def test_list_summary_counts_every_migration_even_beyond_the_limit(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(settings, capsys, "start", "--dry-run", *FAST)[0] == 0
    start_completed(settings, capsys)
    code, payload = run(settings, capsys, "list", "--limit", "1")
    assert code == 0, payload
    assert len(payload["data"]["migrations"]) == 1
    summary = payload["data"]["summary"]
    assert summary["total"] == 2
    assert summary["byStatus"]["completed"] == 2  # as the seed: byStatus adds up to total
    assert sum(summary["byStatus"].values()) == summary["total"]


def test_status_of_an_unknown_migration_is_a_clear_error(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, payload = run(settings, capsys, "status", "migration_nope")
    assert code == 2
    assert payload["success"] is False and payload["errorCode"] == "unknown_migration"
    assert payload["error"] == "There is no migration 'migration_nope' in this database."
    # The suggested command reaches the same database.
    assert payload["hint"].endswith(f"tui-migrator --db {settings.effective_database_url} list")


# -- confirmation and dry run -----------------------------------------------------------------


def test_start_without_yes_is_refused_when_not_interactive_and_writes_nothing(
    settings: Settings, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    before = raw_dump(engine)
    tables_before = table_names(engine)
    code, payload = run(settings, capsys, "start", *FAST)
    assert code == 2
    assert payload["success"] is False and payload["errorCode"] == "bad_input"
    assert "--yes" in payload.get("hint", "") + payload["error"]
    assert raw_dump(engine) == before
    assert table_names(engine) == tables_before
    assert migration_count(settings, capsys) == 0


def test_dry_run_needs_no_yes_and_leaves_data_untouched(
    settings: Settings, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    before = raw_dump(engine)
    tables_before = table_names(engine)
    code, payload = run(settings, capsys, "start", "--dry-run", *FAST)
    assert code == 0, payload
    data = payload["data"]
    assert data["status"] == "completed" and data["dryRun"] is True
    assert data["config"]["dryRun"] is True
    assert data["progress"]["encryptedRecords"] == data["progress"]["totalRecords"] > 0  # would encrypt
    assert data["canRollback"] is False
    assert raw_dump(engine) == before
    assert table_names(engine) == tables_before


# -- bad configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--batch-size", "0"], "--batch-size"),
        (["--batch-size", "5000"], "--batch-size"),
        (["--batch-size", "abc"], "--batch-size"),
        (["--batch-size", "40", "--max-concurrency", "11"], "--max-concurrency"),
        (["--batch-size", "40", "--max-concurrency", "many"], "--max-concurrency: must be a whole number"),
        (["--batch-size", "40", "--category", "GENOMICS"], "--category"),
        (["--batch-size", "40", "--organization", "org_nowhere"], "Unknown organization org_nowhere"),
    ],
)
def test_bad_config_value_is_refused_naming_the_option_and_writes_nothing(
    settings: Settings,
    engine: sa.Engine,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    named: str,
) -> None:
    before = raw_dump(engine)
    code, payload = run(settings, capsys, "start", "--yes", *options)
    assert code == 2, payload
    assert payload["success"] is False
    assert payload["errorCode"] == "invalid_config"
    assert named in payload["error"]
    assert raw_dump(engine) == before
    assert migration_count(settings, capsys) == 0


# -- rollback ---------------------------------------------------------------------------------


def test_rollback_needs_confirm_then_restores_the_exact_original_data(
    settings: Settings, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    original = raw_dump(engine)
    migration_id = start_completed(settings, capsys)["id"]
    encrypted = raw_dump(engine)
    assert encrypted != original

    code, payload = run(settings, capsys, "rollback", migration_id)
    assert code == 2
    assert payload["success"] is False and "--confirm" in payload.get("hint", "") + payload["error"]
    assert raw_dump(engine) == encrypted

    code, payload = run(settings, capsys, "rollback", migration_id, "--confirm")
    assert code == 0, payload
    data = payload["data"]
    assert data["migrationId"] == migration_id
    assert data["status"] == "rolled_back"
    assert "durationSeconds" in data["rollback"]
    assert raw_dump(engine) == original

    code, payload = run(settings, capsys, "status", migration_id)
    assert payload["data"]["status"] == "rolled_back" and payload["data"]["canRollback"] is False


# -- cancel -----------------------------------------------------------------------------------


def test_cancel_of_a_completed_migration_is_refused(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    migration_id = start_completed(settings, capsys)["id"]
    code, payload = run(
        settings, capsys, "cancel", migration_id, "--reason", "Emergency maintenance required"
    )
    assert code == 2
    assert payload["success"] is False and "completed" in payload["error"]
    _, payload = run(settings, capsys, "status", migration_id)
    assert payload["data"]["status"] == "completed"


def test_cancel_without_reason_is_a_usage_error(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, payload = run(settings, capsys, "cancel", "migration_whatever")
    assert code == 2
    assert payload["success"] is False and payload["errorCode"] == "bad_input"
    assert "--reason" in payload["error"]


def test_cancel_of_a_running_migration_has_the_seed_shape(
    settings: Settings,
    service: MigratorService,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow_batches(monkeypatch)
    running = Background(lambda: service.start({"batch_size": 20, "max_concurrency": 1}))
    wait_for(latest_is(service, lambda r: r.status is Status.RUNNING and r.encrypted_records > 0))
    migration_id = latest(service).id  # type: ignore[union-attr]

    code, payload = run(
        settings, capsys, "cancel", migration_id, "--reason", "Emergency maintenance required"
    )
    assert running.join().status is Status.CANCELLED
    assert code == 0, payload
    assert payload["success"] is True
    data = payload["data"]
    assert set(data) >= {"migrationId", "status", "cancelledAt", "reason", "message", "note"}
    assert data["migrationId"] == migration_id
    assert data["status"] == "cancelled"
    assert data["cancelledAt"]
    assert data["reason"] == "Emergency maintenance required"
    assert data["message"] == "Migration cancelled successfully"
    assert "rollback" in data["note"].lower()

    _, payload = run(settings, capsys, "status", migration_id)
    status = payload["data"]
    assert status["status"] == "cancelled" and status["isComplete"] is False
    assert 0 < status["progress"]["encryptedRecords"] < status["progress"]["totalRecords"]
    assert status["cancellation"]["reason"] == "Emergency maintenance required"


# -- failed, report, purge-backups ------------------------------------------------------------


def test_failed_and_report_of_a_completed_migration(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    started = start_completed(settings, capsys)
    migration_id = started["id"]

    code, payload = run(settings, capsys, "failed", migration_id)
    assert code == 0, payload
    assert payload["data"] == {"migrationId": migration_id, "failedRecords": []}

    code, payload = run(settings, capsys, "report", migration_id)
    assert code == 0, payload
    report = payload["data"]
    assert report["migrationId"] == migration_id and report["status"] == "completed"
    total = started["progress"]["totalRecords"]
    assert report["counts"]["totalRecords"] == report["counts"]["encryptedRecords"] == total
    assert report["counts"]["failedRecords"] == 0
    assert report["timing"]["startedAt"] and report["timing"]["completedAt"]
    assert report["throughput"]["recordsPerSecond"] > 0
    assert report["verification"]["passed"] is True


def test_purge_backups_needs_confirm_then_drops_the_backup_tables(
    settings: Settings, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    migration_id = start_completed(settings, capsys)["id"]
    backups = {name for name in table_names(engine) if name.startswith("tm_bk_")}
    assert backups

    code, payload = run(settings, capsys, "purge-backups", migration_id)
    assert code == 2
    assert payload["success"] is False and "--confirm" in payload.get("hint", "") + payload["error"]
    assert {name for name in table_names(engine) if name.startswith("tm_bk_")} == backups

    code, payload = run(settings, capsys, "purge-backups", migration_id, "--confirm")
    assert code == 0, payload
    dropped = payload["data"]["droppedTables"]
    assert dropped and set(dropped) == backups
    assert not set(dropped) & table_names(engine)

    _, payload = run(settings, capsys, "status", migration_id)
    assert all(table["backupTable"] is None for table in payload["data"]["tables"])


# -- permissions ------------------------------------------------------------------------------


def test_viewer_cannot_start_but_can_read_status_and_list(
    settings: Settings,
    service: MigratorService,
    engine: sa.Engine,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    migration_id = start_completed(settings, capsys)["id"]
    service.grant("bob", "viewer")
    monkeypatch.setattr("tui_migrator.storage.operators.current_os_user", lambda: "bob")
    before = raw_dump(engine)

    code, payload = run(settings, capsys, "start", "--yes", *FAST)
    assert code == 3
    assert payload["success"] is False and payload["errorCode"] == "permission_denied"
    assert raw_dump(engine) == before

    code, payload = run(settings, capsys, "status", migration_id)
    assert code == 0 and payload["data"]["status"] == "completed"
    code, payload = run(settings, capsys, "list")
    assert code == 0 and [m["id"] for m in payload["data"]["migrations"]] == [migration_id]
