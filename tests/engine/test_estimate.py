"""The estimate's sample and what it says when the application changes sampled rows."""

from __future__ import annotations

import pytest

from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import (
    FAST,
    raw_dump,
)
from tui_migrator.common.errors import OperationFailed
from tui_migrator.engine import batches as batches_module
from tui_migrator.service.facade import MigratorService

pytestmark = BOTH_BACKENDS


@pytest.mark.backends("sqlite")
def test_rows_changed_while_the_estimate_samples_them_is_said_in_words(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def application_changed_the_sample(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise batches_module.RowsChanged

    monkeypatch.setattr(batches_module.TableBatches, "write_in", application_changed_the_sample)
    before = raw_dump(service.engine)
    with pytest.raises(OperationFailed, match="changed rows of .* while the estimate was sampling"):
        service.estimate(FAST)
    assert raw_dump(service.engine) == before
