"""The access matrix's registry: how to make the resource each path parameter names.

tests/test_access_matrix.py walks app.routes and checks every route guarded by
RequirePermission: (a) no credentials → 401; (b) a user whose role has every permission but
the route's → 403; (c) when the path names a store-bound resource, a user with every
permission but assigned only to store A, asking for store B's resource → 404 (not 403, not
data); (d) a user who must change their password → 403 password_change_required.

To bring a new path parameter into the matrix, add ONE entry to ID_PARAMS: an async factory
`(session, store) -> id` that creates the resource in `store`. Chain-wide resources (roles)
say `store_bound=False` and are created anywhere. A protected route whose path names a
parameter missing here fails the matrix, so nobody forgets.

Case (c) sends `{}` as the body. FastAPI solves dependencies before it reports body errors,
and `iam.dependencies.guard_first` runs the permission before any of them, so a store-bound
path resource loaded in a dependency is a 404 for another store's id whatever the body. A
route that must validate its body first can register a body that passes validation in BODIES.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.models import (
    AlertRoute,
    Category,
    JobRun,
    Product,
    ProductImage,
    PurchaseOrder,
    StockAlert,
    StockBatch,
    StockDiscrepancy,
    Stocktake,
    StockTransfer,
    Store,
    StoreProduct,
    Supplier,
    Tag,
    Terminal,
)

from .builders import make_role, make_user
from .payments.builders import make_payment_account

Factory = Callable[[AsyncSession, Store], Awaitable[int]]


@dataclass(frozen=True)
class IdParam:
    factory: Factory
    #: False for chain-wide resources: case (c) does not apply to them.
    store_bound: bool = True


async def _user(session: AsyncSession, store: Store) -> int:
    """A cashier working in `store` only."""
    return (await make_user(session, role="cashier", stores=[store])).id


async def _role(session: AsyncSession, store: Store) -> int:
    return (await make_role(session, [])).id


async def _store(session: AsyncSession, store: Store) -> int:
    return store.id


async def _terminal(session: AsyncSession, store: Store) -> int:
    terminal = Terminal(code=f"T-{uuid.uuid4().hex[:8]}", store_id=store.id, name="matrix")
    session.add(terminal)
    await session.flush()
    return terminal.id


async def _order(session: AsyncSession, store: Store) -> int:
    """An unpaid order of one line in `store`."""
    from tests.orders.builders import make_order, make_product

    product = await make_product(session, stores=[store])
    return (await make_order(session, store, [(product, 1)])).id


async def _issue(session: AsyncSession, store: Store) -> int:
    """An open abnormal-order issue (price mismatch) on an order of `store`."""
    from selfmart.models import OrderIssue

    order_id = await _order(session, store)
    issue = OrderIssue(
        order_id=order_id,
        store_id=store.id,
        kind="price_mismatch",
        status="open",
        stage="person",
        detail={},
        opened_at=utcnow(),
    )
    session.add(issue)
    await session.flush()
    return issue.id


async def _refund_request(session: AsyncSession, store: Store) -> int:
    """A pending refund request on an order of `store`."""
    from selfmart.models.order import RefundRequest

    order_id = await _order(session, store)
    request = RefundRequest(
        order_id=order_id,
        store_id=store.id,
        status="pending",
        amount_fen=100,
        body={"full": True, "reason": "matrix"},
        reason="matrix",
        requested_at=utcnow(),
        requested_by="matrix",
    )
    session.add(request)
    await session.flush()
    return request.id


async def _job(session: AsyncSession, store: Store) -> int:
    """A job run (owned by nobody: only the system and super admins may see it)."""
    run = JobRun(kind="matrix", status="queued", progress=0, params={}, created_at=utcnow())
    session.add(run)
    await session.flush()
    return run.id


async def _product(session: AsyncSession, store: Store) -> int:
    """A chain-wide product, listed in `store` (so the store's listing routes find it)."""
    product = Product(name=f"矩阵商品 {uuid.uuid4().hex[:6]}", price_fen=100)
    session.add(product)
    await session.flush()
    session.add(StoreProduct(store_id=store.id, product_id=product.id))
    await session.flush()
    return product.id


async def _category(session: AsyncSession, store: Store) -> int:
    category = Category(name=f"矩阵 {uuid.uuid4().hex[:6]}", depth=1)
    session.add(category)
    await session.flush()
    category.path = f"/{category.id}/"
    await session.flush()
    return category.id


async def _tag(session: AsyncSession, store: Store) -> int:
    tag = Tag(name=f"矩阵 {uuid.uuid4().hex[:6]}")
    session.add(tag)
    await session.flush()
    return tag.id


async def _image(session: AsyncSession, store: Store) -> int:
    image = ProductImage(
        product_id=await _product(session, store),
        storage_key="products/0/none.jpg",
        thumb_key="products/0/none_thumb.webp",
        content_type="image/jpeg",
        width=1,
        height=1,
        size_bytes=1,
    )
    session.add(image)
    await session.flush()
    return image.id


async def _stock_alert(session: AsyncSession, store: Store) -> int:
    alert = StockAlert(
        store_id=store.id,
        product_id=await _product(session, store),
        kind="low_stock",
        status="open",
        threshold=5,
        quantity=1,
        opened_at=utcnow(),
    )
    session.add(alert)
    await session.flush()
    return alert.id


async def _stock_discrepancy(session: AsyncSession, store: Store) -> int:
    item = StockDiscrepancy(
        store_id=store.id,
        product_id=await _product(session, store),
        requested=2,
        short_by=1,
        balance_after=-1,
        status="open",
        created_at=utcnow(),
    )
    session.add(item)
    await session.flush()
    return item.id


async def _stock_batch(session: AsyncSession, store: Store) -> int:
    batch = StockBatch(
        store_id=store.id,
        product_id=await _product(session, store),
        expiry_date=utcnow().date(),
        quantity_received=1,
        received_at=utcnow(),
    )
    session.add(batch)
    await session.flush()
    return batch.id


async def _alert_route(session: AsyncSession, store: Store) -> int:
    route = AlertRoute(
        name="matrix",
        store_id=store.id,
        target="robot",
        robot_kind="wecom",
        webhook_url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=matrix",
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(route)
    await session.flush()
    return route.id


async def _supplier(session: AsyncSession, store: Store) -> int:
    supplier = Supplier(code=f"M{uuid.uuid4().hex[:8]}", name="矩阵供应商")
    session.add(supplier)
    await session.flush()
    return supplier.id


async def _purchase_order(session: AsyncSession, store: Store) -> int:
    po = PurchaseOrder(
        number=f"PO{uuid.uuid4().hex[:12]}",
        store_id=store.id,
        supplier_id=await _supplier(session, store),
        status="draft",
    )
    session.add(po)
    await session.flush()
    return po.id


async def _transfer(session: AsyncSession, store: Store) -> int:
    """A transfer out of `store` into a third store (so only `store` ties it to a caller)."""
    target = Store(code=f"M{uuid.uuid4().hex[:8]}", name="矩阵目的店")
    session.add(target)
    await session.flush()
    transfer = StockTransfer(
        number=f"TR{uuid.uuid4().hex[:12]}",
        from_store_id=store.id,
        to_store_id=target.id,
        status="draft",
    )
    session.add(transfer)
    await session.flush()
    return transfer.id


async def _payment_account(session: AsyncSession, store: Store) -> int:
    return (await make_payment_account(session, store)).id


async def _payment(session: AsyncSession, store: Store) -> int:
    """A manual payment of an order in `store`."""
    from selfmart.iam.actor import SYSTEM
    from selfmart.payments import service as payments

    order_id = await _order(session, store)
    paid = await payments.collect(
        session,
        order_id=order_id,
        order_no="M",
        store_id=store.id,
        channel="manual",
        amount_fen=100,
        actor=SYSTEM,
    )
    return paid.id


async def _stocktake(session: AsyncSession, store: Store) -> int:
    take = Stocktake(number=f"ST{uuid.uuid4().hex[:12]}", store_id=store.id, status="counting")
    session.add(take)
    await session.flush()
    return take.id


async def _member(session: AsyncSession, store: Store) -> int:
    from .members.helpers import make_member

    return (await make_member(session)).id


async def _member_tier(session: AsyncSession, store: Store) -> int:
    from .members.helpers import make_tier

    return (await make_tier(session, 400 + uuid.uuid4().int % 90)).id


async def _member_segment(session: AsyncSession, store: Store) -> int:
    from selfmart.models import MemberSegment

    now = utcnow()
    seg = MemberSegment(name=f"matrix {uuid.uuid4().hex[:8]}", rules={}, created_at=now,
                        updated_at=now)  # fmt: skip
    session.add(seg)
    await session.flush()
    return seg.id


async def _coupon_template(session: AsyncSession, store: Store) -> int:
    from selfmart.models import CouponTemplate

    now = utcnow()
    template = CouponTemplate(name="matrix", kind="amount", amount_off_fen=100, valid_days=1,
                              created_at=now, updated_at=now)  # fmt: skip
    session.add(template)
    await session.flush()
    return template.id


async def _member_coupon(session: AsyncSession, store: Store) -> int:
    from selfmart.members import coupons
    from selfmart.models import CouponTemplate

    from .members.helpers import ADMIN, make_member

    template = await session.get(CouponTemplate, await _coupon_template(session, store))
    assert template is not None
    return (await coupons.give(session, await make_member(session), template, actor=ADMIN)).id


async def _reconciliation_difference(session: AsyncSession, store: Store) -> int:
    from datetime import date

    from sqlalchemy import select

    from selfmart.models import PaymentAccount, ReconciliationItem, ReconciliationRun

    account = await session.scalar(
        select(PaymentAccount).where(
            PaymentAccount.store_id == store.id, PaymentAccount.channel == "card"
        )
    ) or await make_payment_account(session, store, "card")
    run = ReconciliationRun(
        account_id=account.id, channel="card", bill_date=date(2026, 1, uuid.uuid4().int % 28 + 1),
        kind=uuid.uuid4().hex[:16], status="reconciled", started_at=utcnow(),
    )  # fmt: skip
    session.add(run)
    await session.flush()
    item = ReconciliationItem(
        run_id=run.id, difference="platform_only", state="open", kind="payment",
        line_no=2, transaction_id="T1", bill_amount_fen=100, store_id=store.id,
    )  # fmt: skip
    session.add(item)
    await session.flush()
    return item.id


async def _supplier_statement(session: AsyncSession, store: Store) -> int:
    from datetime import date

    from selfmart.models import SupplierStatement

    supplier_id = await _supplier(session, store)
    statement = SupplierStatement(
        number=f"ST{uuid.uuid4().hex[:12]}", supplier_id=supplier_id,
        period_start=date(2026, 1, 1), period_end=date(2026, 1, 31), status="draft",
        basis="received", created_at=utcnow(), generated_at=utcnow(),
    )  # fmt: skip
    session.add(statement)
    await session.flush()
    return statement.id


async def _basket_run(session: AsyncSession, store: Store) -> int:
    from datetime import date

    from selfmart.models import BasketRun

    run = BasketRun(
        store_id=store.id, first_day=date(2026, 1, 1), last_day=date(2026, 1, 31),
        min_support=0.01, min_confidence=0.1, min_lift=0, max_len=2, trigger="manual",
        status="succeeded", baskets=0, products=0, itemsets=0, rules=0, truncated=False,
        created_at=utcnow(),
    )  # fmt: skip
    session.add(run)
    await session.flush()
    return run.id


async def _alert_rule(session: AsyncSession, store: Store) -> int:
    from selfmart.models import AlertRule

    rule = AlertRule(
        name="matrix", metric="terminal_offline_minutes", comparison="gte", threshold=10,
        duration_seconds=0, window_minutes=15, severity="warning", store_id=store.id,
        channels=["in_app"], user_ids=[], role_ids=[], enabled=False,
    )  # fmt: skip
    session.add(rule)
    await session.flush()
    return rule.id


async def _system_alert(session: AsyncSession, store: Store) -> int:
    from selfmart.models import Alert

    alert = Alert(
        rule_id=await _alert_rule(session, store), subject="store:1", store_id=store.id,
        status="open", severity="warning", since=utcnow(), fired_at=utcnow(), last_value=1,
        last_seen_at=utcnow(), notifications=0,
    )  # fmt: skip
    session.add(alert)
    await session.flush()
    return alert.id


#: path parameter name → how to make one.
ID_PARAMS: dict[str, IdParam] = {
    "user_id": IdParam(_user),
    "role_id": IdParam(_role, store_bound=False),
    "store_id": IdParam(_store),
    "terminal_id": IdParam(_terminal),
    "order_id": IdParam(_order),
    "issue_id": IdParam(_issue),
    "request_id": IdParam(_refund_request),
    "job_id": IdParam(_job, store_bound=False),
    "product_id": IdParam(_product, store_bound=False),
    "category_id": IdParam(_category, store_bound=False),
    "tag_id": IdParam(_tag, store_bound=False),
    "image_id": IdParam(_image, store_bound=False),
    "alert_id": IdParam(_stock_alert),
    "discrepancy_id": IdParam(_stock_discrepancy),
    "batch_id": IdParam(_stock_batch),
    "route_id": IdParam(_alert_route),
    "supplier_id": IdParam(_supplier, store_bound=False),
    "po_id": IdParam(_purchase_order),
    "transfer_id": IdParam(_transfer),
    "stocktake_id": IdParam(_stocktake),
    "account_id": IdParam(_payment_account),
    "payment_id": IdParam(_payment),
    "difference_id": IdParam(_reconciliation_difference),
    "member_id": IdParam(_member, store_bound=False),
    "tier_id": IdParam(_member_tier, store_bound=False),
    "segment_id": IdParam(_member_segment, store_bound=False),
    "template_id": IdParam(_coupon_template, store_bound=False),
    "coupon_id": IdParam(_member_coupon, store_bound=False),
    "statement_id": IdParam(_supplier_statement, store_bound=False),
    "run_id": IdParam(_basket_run),
    "rule_id": IdParam(_alert_rule, store_bound=False),
    "system_alert_id": IdParam(_system_alert),
}

#: (method, path template) → a request body that passes validation, for routes that
#: validate their body before looking up the path's resource. `{}` otherwise.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/orders/{order_id}/cancel"): {"reason": "matrix"},
    ("POST", "/api/v1/orders/{order_id}/refunds"): {"full": True, "reason": "matrix"},
    ("POST", "/api/v1/orders/{order_id}/refund-requests"): {"full": True, "reason": "matrix"},
    ("POST", "/api/v1/orders/issues/{issue_id}/actions"): {"action": "close", "note": "matrix"},
    ("POST", "/api/v1/stock-discrepancies/{discrepancy_id}/resolve"): {"note": "matrix"},
    ("POST", "/api/v1/purchase-orders/{po_id}/receive"): {
        "lines": [{"product_id": 1, "quantity": 1}]
    },
    ("POST", "/api/v1/stocktakes/{stocktake_id}/counts"): {
        "counts": [{"barcode": "0", "counted_qty": 1}]
    },
}
