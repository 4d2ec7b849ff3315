"""The audit words the exports use are the console's (one catalogue, selfmart/audit/words)."""

from __future__ import annotations

from pathlib import Path

from selfmart.audit import words

ROOT = Path(__file__).resolve().parents[2]


def test_actions_read_as_the_console_reads_them() -> None:
    assert words.action("order.refund", "zh-CN") == "订单：退款"
    assert words.action("order.refund", "en") == "Order: refunded"
    # each part after the entity in words, unknown parts as they are
    assert words.action("order.issue.brand_new_verb", "en").endswith(" · brand_new_verb")
    assert words.action("no_such_entity.create", "en") == "no_such_entity: created"
    assert words.action("order", "zh-CN") == "订单"
    assert words.actor_type("terminal", "zh-CN") == "终端"
    assert words.actor_type("robot", "en") == "robot"


def test_both_languages_name_the_same_codes() -> None:
    zh, en = words.catalogue("zh-CN"), words.catalogue("en")
    for part in ("actorTypes", "entityTypes", "verbs"):
        assert set(zh[part]) == set(en[part]), part


def test_the_console_imports_this_catalogue_not_a_copy() -> None:
    for name in ("zh-CN", "en"):
        source = (ROOT / "web" / "src" / "i18n" / "locales" / f"{name}.ts").read_text("utf-8")
        assert f"src/selfmart/audit/words/{name}.json'" in source, name
        assert "verbs: {" not in source, name
