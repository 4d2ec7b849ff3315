"""`selfmart check-stock` against a real database: silent success, then a corrupted balance is
named and the command fails. The data is committed (the command opens its own connection) and
removed afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncEngine

from selfmart.db import make_sessionmaker
from selfmart.inventory import service as inventory
from selfmart.models import Product, StockAlert, StockLevel, StockMovement, Store

from .builders import CLERK


def _check(url: str, store_id: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SELFMART_DATABASE_URL": url, "SELFMART_LOG_LEVEL": "WARNING"}
    return subprocess.run(  # noqa: ASYNC221  (a CLI run to completion is the point)
        [sys.executable, "-m", "selfmart.cli", "check-stock", "--store-id", str(store_id)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_check_stock_reports_a_corrupted_balance(engine: AsyncEngine) -> None:
    factory = make_sessionmaker(engine)
    tag = uuid.uuid4().hex[:6].upper()
    async with factory() as s:
        store = Store(code=f"CHK{tag}", name="check")
        a = Product(name=f"check a {tag}", price_fen=100)
        b = Product(name=f"check b {tag}", price_fen=100)
        s.add_all([store, a, b])
        await s.flush()
        await inventory.receive(
            s,
            store_id=store.id,
            lines=[inventory.ReceiptLine(a.id, 7), inventory.ReceiptLine(b.id, 3)],
            document=("check", tag),
            actor=CLERK,
        )
        await s.commit()
        ids = (store.id, a.id, b.id)
    url = engine.url.render_as_string(hide_password=False)
    try:
        ok = _check(url, ids[0])
        assert ok.returncode == 0, ok.stderr
        assert "stock balances match the ledger" in ok.stdout
        async with factory() as s:
            await s.execute(
                update(StockLevel)
                .where(StockLevel.store_id == ids[0], StockLevel.product_id == ids[2])
                .values(quantity=30)
            )
            await s.commit()
        bad = _check(url, ids[0])
        assert bad.returncode == 1
        assert f"MISMATCH store={ids[0]} product={ids[2]} balance=30 ledger=3" in bad.stdout
        assert f"product={ids[1]}" not in bad.stdout
    finally:
        async with factory() as s:
            for model in (StockMovement, StockAlert, StockLevel):
                await s.execute(delete(model).where(model.store_id == ids[0]))
            await s.execute(delete(Product).where(Product.id.in_(ids[1:])))
            await s.execute(delete(Store).where(Store.id == ids[0]))
            await s.commit()
