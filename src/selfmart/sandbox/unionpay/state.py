"""The UnionPay sandbox's merchant, certificates and transactions, on disk under
`payment_sandbox_dir/unionpay` (certificates generated on first use; transactions in
`trades.sqlite3`, see `selfmart.sandbox.store`); controls in memory."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from selfmart.config import Settings
from selfmart.kit.time import utcnow
from selfmart.payments.unionpay import protocol as u
from selfmart.sandbox import keys, store
from selfmart.sandbox.alipay.callbacks import Notifier
from selfmart.sandbox.store import PersistentMap, Tracked

#: Card numbers (what a card reader hands over) whose outcome is fixed.
TEST_CARDS = {
    "success": "6216261000000000018",
    "user_paying": "6216261000000000026",
    "declined": "6216261000000000034",
    "insufficient_funds": "6216261000000000042",
    "timeout": "6216261000000000059",
}
#: The backUrl notification is sent again until the merchant answers HTTP 200: after 1, 2, 4,
#: 8 and 16 minutes (five retries).
UNIONPAY_RETRY_SECONDS: tuple[float, ...] = (60, 120, 240, 480, 960)


@dataclass
class Txn(Tracked):
    txn_type: str
    txn_sub_type: str
    order_id: str
    txn_time: str
    amount_fen: int
    query_id: str
    card: str
    back_url: str
    #: "00" succeeded, a failure respCode, or "05" still being processed
    result: str
    created_at: datetime
    trace_no: str
    orig_query_id: str = ""
    finished_at: datetime | None = None
    #: for a consume: what undo and refunds have taken back
    returned_fen: int = 0

    @property
    def settle_date(self) -> str:
        at = self.finished_at or self.created_at
        return at.astimezone(u.BEIJING).strftime("%m%d")

    def view(self) -> dict[str, Any]:
        return {
            "txnType": self.txn_type,
            "orderId": self.order_id,
            "txnTime": self.txn_time,
            "txnAmt": str(self.amount_fen),
            "queryId": self.query_id,
            "accNo": self.card,
            "result": self.result,
            "origQryId": self.orig_query_id,
            "returned": str(self.returned_fen),
        }


def _accepted(response: httpx.Response) -> bool:
    return response.status_code == 200


def _new_account() -> dict[str, str]:
    merchant_key, merchant_cert = u.make_certificate("selfmart sandbox merchant")
    sign_key, sign_cert = u.make_certificate("UnionPay sandbox signing")
    encrypt_key, encrypt_cert = u.make_certificate("UnionPay sandbox encryption")
    return {
        "mer_id": "777290058" + keys.random_digits(6),
        "merchant_key": merchant_key,
        "merchant_cert": merchant_cert,
        "sign_key": sign_key,
        "sign_cert": sign_cert,
        "encrypt_key": encrypt_key,
        "encrypt_cert": encrypt_cert,
    }


def _pair(raw: str) -> tuple[str, str]:
    order_id, txn_time = store.untuple_key(raw)
    return order_id, txn_time


class UnionPaySandbox:
    def __init__(self, directory: Path, time_scale: float) -> None:
        self.directory = directory
        account = keys.account(directory, _new_account)
        self.mer_id: str = account["mer_id"]
        self.merchant_key: str = account["merchant_key"]
        self.merchant_cert: str = account["merchant_cert"]
        self.sign_key: str = account["sign_key"]
        self.sign_cert: str = account["sign_cert"]
        self.encrypt_key: str = account["encrypt_key"]
        self.encrypt_cert: str = account["encrypt_cert"]
        self.merchant_cert_id = u.cert_id(self.merchant_cert)
        self.sign_cert_id = u.cert_id(self.sign_cert)
        self.encrypt_cert_id = u.cert_id(self.encrypt_cert)
        #: by (orderId, txnTime), as the gateway finds an original transaction
        self.txns: PersistentMap[tuple[str, str], Txn] = PersistentMap(
            store.store_at(directory),
            "txn",
            Txn,
            encode_key=store.tuple_key,
            decode_key=_pair,
        )
        self.received: list[dict[str, Any]] = []
        self.next_actions: list[dict[str, Any]] = []
        self.notify_modes: list[dict[str, Any]] = []
        self.held: list[tuple[str, bytes, dict[str, str]]] = []
        self.notifier = Notifier(UNIONPAY_RETRY_SECONDS, _accepted, time_scale)
        # trace numbers go on from where the stored transactions left off
        self._trace = len(self.txns) % 1_000_000

    def next_trace(self) -> str:
        self._trace = (self._trace + 1) % 1_000_000
        return f"{self._trace:06d}"

    def new_query_id(self) -> str:
        """21 digits: the Beijing time to the second and a serial."""
        return f"{u.format_txn_time(utcnow())}{secrets.randbelow(10**7):07d}"

    def by_query_id(self, query_id: str) -> Txn | None:
        return next((t for t in self.txns.values() if t.query_id == query_id), None)

    def take_action(self, path: str, txn_type: str) -> dict[str, Any] | None:
        for i, action in enumerate(self.next_actions):
            if action.get("txn_type") in (None, "", txn_type):
                return self.next_actions.pop(i)
        return None

    def reset(self) -> None:
        self.txns.clear()
        self.received.clear()
        self.next_actions.clear()
        self.notify_modes.clear()
        self.held.clear()


_SANDBOXES: dict[Path, UnionPaySandbox] = {}


def forget(settings: Settings) -> None:
    """Drop this process's sandbox of the configured directory, having written its
    transactions (a restart, as tests play it)."""
    directory = (settings.payment_sandbox_dir / "unionpay").resolve()
    _SANDBOXES.pop(directory, None)
    store.forget(directory)


def sandbox_for(settings: Settings) -> UnionPaySandbox:
    directory = (settings.payment_sandbox_dir / "unionpay").resolve()
    sandbox = _SANDBOXES.get(directory)
    if sandbox is None:
        sandbox = _SANDBOXES[directory] = UnionPaySandbox(
            directory, settings.payment_sandbox_time_scale
        )
    sandbox.notifier.time_scale = settings.payment_sandbox_time_scale
    return sandbox
