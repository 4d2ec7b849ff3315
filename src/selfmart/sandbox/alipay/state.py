"""The Alipay sandbox's merchant, keys and trades: keys and trades on disk under
`payment_sandbox_dir/alipay` (keys generated on first use; trades in `trades.sqlite3`, see
`selfmart.sandbox.store`), controls in memory."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from selfmart.config import Settings
from selfmart.kit.time import utcnow
from selfmart.payments.alipay import protocol
from selfmart.sandbox import keys, store
from selfmart.sandbox.alipay.callbacks import ALIPAY_RETRY_SECONDS, Notifier
from selfmart.sandbox.store import PersistentMap, Tracked

#: Payment codes whose outcome is fixed (Alipay codes are 25-30 followed by 14-22 digits).
TEST_AUTH_CODES = {
    "success": "280000000000000001",
    "user_paying": "280000000000000002",
    "declined": "280000000000000003",
    "insufficient_funds": "280000000000000004",
    "timeout": "280000000000000005",
}
BUYER_ID = "2088102177846880"
BUYER_LOGON_ID = "buy***@sandbox.com"


@dataclass
class Refund:
    out_request_no: str
    amount_fen: int
    reason: str
    at: datetime


@dataclass
class Trade(Tracked):
    out_trade_no: str
    trade_no: str
    subject: str
    total_fen: int
    #: bar_code | qr | wap
    product: str
    status: str  # WAIT_BUYER_PAY | TRADE_SUCCESS | TRADE_CLOSED | TRADE_FINISHED
    created_at: datetime
    notify_url: str = ""
    paid_at: datetime | None = None
    closed_at: datetime | None = None
    #: `time_expire`: unpaid past this, the trade closes
    expires_at: datetime | None = None
    refunds: dict[str, Refund] = field(default_factory=dict)

    @property
    def refunded_fen(self) -> int:
        return sum(r.amount_fen for r in self.refunds.values())

    def view(self) -> dict[str, Any]:
        return {
            "out_trade_no": self.out_trade_no,
            "trade_no": self.trade_no,
            "subject": self.subject,
            "total_amount": protocol.fen_to_yuan(self.total_fen),
            "product": self.product,
            "trade_status": self.status,
            "refunded_amount": protocol.fen_to_yuan(self.refunded_fen),
            "notify_url": self.notify_url,
        }


def _accepted(response: httpx.Response) -> bool:
    # Alipay stops only when the body is exactly `success` (surrounding blanks tolerated).
    return response.status_code == 200 and response.text.strip() == "success"


def _new_account() -> dict[str, str]:
    app_private, app_public = protocol.generate_key_pair()
    alipay_private, alipay_public = protocol.generate_key_pair()
    return {
        "app_id": "2021" + keys.random_digits(12),
        "pid": "2088" + keys.random_digits(12),
        "app_private_key": app_private,
        "app_public_key": app_public,
        "alipay_private_key": alipay_private,
        "alipay_public_key": alipay_public,
        "bill_secret": secrets.token_hex(16),
    }


class AlipaySandbox:
    def __init__(self, directory: Path, time_scale: float) -> None:
        self.directory = directory
        account = keys.account(directory, _new_account)
        self.app_id: str = account["app_id"]
        self.pid: str = account["pid"]
        self.app_private_key: str = account["app_private_key"]
        self.app_public_key: str = account["app_public_key"]
        self.alipay_private_key: str = account["alipay_private_key"]
        self.alipay_public_key: str = account["alipay_public_key"]
        self.bill_secret: str = account["bill_secret"]
        self.trades: PersistentMap[str, Trade] = PersistentMap(
            store.store_at(directory), "trade", Trade
        )
        self.received: list[dict[str, Any]] = []
        #: what the next gateway calls do instead of the usual (control API)
        self.next_actions: list[dict[str, Any]] = []
        #: what the next notifications do (control API)
        self.notify_modes: list[dict[str, Any]] = []
        #: a notification held back by `out_of_order`, sent after the next one
        self.held: list[tuple[str, bytes, dict[str, str]]] = []
        self.notifier = Notifier(ALIPAY_RETRY_SECONDS, _accepted, time_scale)
        self._serial = 0

    @property
    def bill_account(self) -> str:
        """The 账号 bills are named and headed with: the pid and the account type 0156."""
        return self.pid + "0156"

    def new_trade_no(self) -> str:
        self._serial += 1
        return f"{utcnow():%Y%m%d}22001{secrets.randbelow(10**10):010d}{self._serial:05d}"

    def take_action(self, method: str) -> dict[str, Any] | None:
        for i, action in enumerate(self.next_actions):
            if action.get("method") in (None, "", method):
                return self.next_actions.pop(i)
        return None

    def reset(self) -> None:
        self.trades.clear()
        self.received.clear()
        self.next_actions.clear()
        self.notify_modes.clear()
        self.held.clear()


_SANDBOXES: dict[Path, AlipaySandbox] = {}


def forget(settings: Settings) -> None:
    """Drop this process's sandbox of the configured directory, having written its trades
    (a restart, as tests play it: the next `sandbox_for` reads them back)."""
    directory = (settings.payment_sandbox_dir / "alipay").resolve()
    _SANDBOXES.pop(directory, None)
    store.forget(directory)


def sandbox_for(settings: Settings) -> AlipaySandbox:
    directory = (settings.payment_sandbox_dir / "alipay").resolve()
    sandbox = _SANDBOXES.get(directory)
    if sandbox is None:
        sandbox = _SANDBOXES[directory] = AlipaySandbox(
            directory, settings.payment_sandbox_time_scale
        )
    sandbox.notifier.time_scale = settings.payment_sandbox_time_scale
    return sandbox
