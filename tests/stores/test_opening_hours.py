"""Opening hours: '24h' or a daily window in the store's zone that may wrap midnight."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from selfmart.models import Store
from selfmart.stores.schemas import check_opening_hours
from selfmart.stores.service import is_open, opening_hours_contain


@pytest.mark.parametrize(
    ("hours", "at", "expected"),
    [
        ("24h", time(3, 0), True),
        ("07:00-23:00", time(7, 0), True),
        ("07:00-23:00", time(6, 59), False),
        ("07:00-23:00", time(22, 59), True),
        ("07:00-23:00", time(23, 0), False),
        ("22:00-06:00", time(23, 30), True),
        ("22:00-06:00", time(2, 0), True),
        ("22:00-06:00", time(6, 0), False),
        ("22:00-06:00", time(12, 0), False),
    ],
)
def test_contains(hours: str, at: time, expected: bool) -> None:
    assert opening_hours_contain(hours, at) is expected


@pytest.mark.parametrize("bad", ["", "24", "24H", "7:00-23:00", "07:00-24:00", "07:60-08:00"])
def test_invalid_forms_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="opening hours|equal"):
        check_opening_hours(bad)


def test_is_open_is_judged_in_the_store_zone() -> None:
    store = Store(code="Z", name="z", timezone="Asia/Shanghai", opening_hours="07:00-23:00")
    store.status = "active"
    # 23:30 UTC is 07:30 the next morning in Shanghai.
    assert is_open(store, datetime(2026, 3, 1, 23, 30, tzinfo=UTC)) is True
    # 16:00 UTC is midnight in Shanghai.
    assert is_open(store, datetime(2026, 3, 1, 16, 0, tzinfo=UTC)) is False
    store.status = "suspended"
    assert is_open(store, datetime(2026, 3, 1, 23, 30, tzinfo=UTC)) is False
