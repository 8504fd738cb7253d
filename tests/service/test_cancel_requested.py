"""A cancel the worker has not acknowledged yet ("cancelling") already says when it was asked for,
and the migration keeps that time once the worker stops."""

from __future__ import annotations

import os
import pwd

from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import FAST, wait_for
from tui_migrator.service.facade import MigratorService
from tui_migrator.service.views import cancel_data
from tui_migrator.storage.migration_status import Status

pytestmark = BOTH_BACKENDS


def test_a_cancel_not_yet_acknowledged_has_its_time_and_keeps_it(service: MigratorService) -> None:
    # The detached worker acts as the operating-system user running the suite.
    service.grant(pwd.getpwuid(os.geteuid()).pw_name, "super_admin")
    waiting = service.start({**FAST, "not_before": "2999-01-01T00:00"}, detach=True)
    wait_for(lambda: service.status(waiting.id).worker_alive, timeout=60)

    asked = service.cancel(waiting.id, "Emergency maintenance required", wait_seconds=0)

    assert asked.cancel_requested and asked.cancelled_at is not None
    data = cancel_data(asked)
    assert data["cancelledAt"] is not None
    wait_for(lambda: service.status(waiting.id).status is Status.CANCELLED, timeout=60)
    assert service.status(waiting.id).cancelled_at == asked.cancelled_at
