"""The lifecycle is written once (statemachine.py) and drawn in docs/ from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from selfmart.errors import IllegalTransition
from selfmart.orders import statemachine
from selfmart.orders.statemachine import FINAL, INITIAL, OrderStatus

DOC = Path(__file__).resolve().parents[2] / "docs" / "order-lifecycle.md"


def test_the_doc_draws_exactly_this_state_machine() -> None:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(
        r"<!-- statemachine:begin -->\n```mermaid\n(.*?)\n```\n<!-- statemachine:end -->",
        text,
        re.S,
    )
    assert match, "docs/order-lifecycle.md lost its generated diagram block"
    assert match.group(1) == statemachine.mermaid(), (
        "docs/order-lifecycle.md is stale: paste `python -m selfmart.orders.statemachine`"
    )
    # Every status is explained in the table too.
    for status in OrderStatus:
        assert f"| `{status.value}` |" in text


def test_every_status_is_reachable_and_only_final_ones_are_dead_ends() -> None:
    seen = {INITIAL}
    frontier = [INITIAL]
    while frontier:
        current = frontier.pop()
        for nxt in statemachine.allowed_next(current):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(OrderStatus)
    for status in OrderStatus:
        assert (not statemachine.allowed_next(status)) == (status in FINAL), status


def test_the_issue_path_is_allowed() -> None:
    path = ["created", "awaiting_payment", "paid", "completed", "refund_requested", "refunded"]
    for a, b in zip(path, path[1:], strict=False):
        statemachine.check(a, b)
    statemachine.check("awaiting_payment", "closed")
    statemachine.check("refund_requested", "partially_refunded")


@pytest.mark.parametrize(
    ("src", "dst"),
    [("closed", "paid"), ("created", "paid"), ("refunded", "refund_requested"), ("paid", "paid")],
)
def test_an_illegal_transition_names_both_states(src: str, dst: str) -> None:
    with pytest.raises(IllegalTransition) as info:
        statemachine.check(src, dst)
    err = info.value
    assert err.status == 409
    assert err.code == "illegal_transition"
    assert src in err.message
    assert dst in err.message
    assert err.details[0].field == "status"
