"""kit.time.clock_at: the services' clock pinned for a block (demo history), then released."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from selfmart.kit.time import UTC, clock_at, utcnow


def test_clock_is_pinned_in_the_block_and_released_after() -> None:
    moment = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
    with clock_at(moment):
        assert utcnow() == moment
        with clock_at(moment + timedelta(minutes=5)):
            assert utcnow() == moment + timedelta(minutes=5)
        assert utcnow() == moment
    assert utcnow() - moment > timedelta(days=1)


def test_clock_needs_an_aware_moment() -> None:
    with pytest.raises(ValueError, match="aware"), clock_at(datetime(2026, 11, 1)):  # noqa: DTZ001
        pass
