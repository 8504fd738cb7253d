"""Health's recent activity: success means a migration completed (a rollback afterwards, on
purpose, does not turn it into a failure), and before any migration has ended there is no rate."""

from __future__ import annotations

import os
import pwd

from tests.support.migration_helpers import FAST
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status


def test_before_any_migration_the_rate_is_not_applicable_and_the_types_hold(service: MigratorService) -> None:
    activity = service.health().recent_activity
    assert (activity.success_rate, activity.average_records_per_migration) == ("n/a", 0)
    assert (activity.last24_hours, activity.ended_last24_hours) == (0, 0)


def test_a_completed_migration_rolled_back_on_purpose_still_counts_as_a_success(
    service: MigratorService,
) -> None:
    first = service.start({**FAST, "data_categories": ["DEMOGRAPHICS"]})
    assert first.status is Status.COMPLETED
    rolled_back, _result = service.rollback(first.id, confirm=True)
    assert rolled_back.status is Status.ROLLED_BACK
    activity = service.health().recent_activity
    assert (activity.success_rate, activity.succeeded_last24_hours, activity.ended_last24_hours) == (
        "100.0%",
        1,
        1,
    )
    assert activity.average_records_per_migration == first.total_records


def test_a_cancelled_migration_counts_as_ended_without_success(service: MigratorService) -> None:
    completed = service.start({**FAST, "data_categories": ["DEMOGRAPHICS"]})
    service.grant(pwd.getpwuid(os.geteuid()).pw_name, "super_admin")  # the detached worker's user
    cancelled = service.start({**FAST, "data_categories": ["MOTOR_SYMPTOMS"]}, detach=True)
    service.cancel(cancelled.id, "testing the rate")
    assert service.status(cancelled.id).status in (Status.CANCELLED, Status.COMPLETED)
    ended_cancelled = service.status(cancelled.id).status is Status.CANCELLED
    activity = service.health().recent_activity
    assert activity.ended_last24_hours == 2 and completed.status is Status.COMPLETED
    assert activity.success_rate == ("50.0%" if ended_cancelled else "100.0%")
