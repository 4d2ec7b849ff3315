"""The WeChat Pay sandbox's memory: transactions, refunds, bills, the control switches, what it
received, and the callbacks it sends on the platform's own retry schedule. Transactions and
refunds are kept on disk beside the keys (`selfmart.sandbox.store`), the rest in memory."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections import deque
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from selfmart.kit.time import utcnow
from selfmart.payments.wechatpay import protocol as wx
from selfmart.sandbox import store
from selfmart.sandbox.store import PersistentMap, Tracked
from selfmart.sandbox.wechatpay.keys import PlatformCert, PlatformPublicKey, SandboxKeys

#: seconds between callback attempts after the first, as the platform documents them
#: (15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h), divided by the time scale
RETRY_SCHEDULE: tuple[int, ...] = (
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
)  # fmt: skip
#: how long the platform waits for a callback's answer
CALLBACK_TIMEOUT = 5.0
#: a refund stays PROCESSING this long (scaled) before it succeeds
REFUND_SECONDS = 3.0
#: a `late` callback is first sent this much (scaled) later than it would be
LATE_SECONDS = 60.0
#: how long a `timeout` answer takes (not scaled: it is the client's timeout it exercises)
TIMEOUT_SECONDS = 35.0

SignMode = Literal["certificate", "public_key"]
#: refund_abnormal / refund_closed: the next refund is taken (PROCESSING) and then ends
#: ABNORMAL (the payer's card or account can no longer receive it) or CLOSED, not SUCCESS
NextAction = Literal[
    "decline", "timeout", "user_paying", "error_500", "refund_abnormal", "refund_closed"
]
CallbackMode = Literal["twice", "late", "out_of_order", "bad_signature"]


@dataclass
class Transaction(Tracked):
    out_trade_no: str
    appid: str
    mchid: str
    description: str
    total: int
    trade_type: str
    notify_url: str
    sign_mode: SignMode
    fingerprint: str
    created_at: datetime
    transaction_id: str = ""
    trade_state: str = "NOTPAY"
    trade_state_desc: str = "订单未支付"
    success_time: datetime | None = None
    openid: str = ""
    attach: str = ""
    pay_ref: str = ""
    refunded: int = 0
    expires_at: datetime | None = None

    def document(self) -> dict[str, Any]:
        """The transaction as query and callbacks show it."""
        doc: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": self.out_trade_no,
            "trade_type": self.trade_type,
            "trade_state": self.trade_state,
            "trade_state_desc": self.trade_state_desc,
        }
        if self.transaction_id:
            doc["transaction_id"] = self.transaction_id
        if self.attach:
            doc["attach"] = self.attach
        if self.trade_state in {"SUCCESS", "REFUND"} and self.success_time is not None:
            doc["bank_type"] = "OTHERS"
            doc["success_time"] = wx.rfc3339(self.success_time)
            doc["payer"] = {"openid": self.openid}
            doc["amount"] = {
                "total": self.total,
                "payer_total": self.total,
                "currency": "CNY",
                "payer_currency": "CNY",
            }
        else:
            doc["amount"] = {"total": self.total, "currency": "CNY"}
        return doc


@dataclass
class Refund(Tracked):
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    refund: int
    total: int
    reason: str
    notify_url: str
    sign_mode: SignMode
    created_at: datetime
    status: str = "PROCESSING"
    success_time: datetime | None = None

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "refund_id": self.refund_id,
            "out_refund_no": self.out_refund_no,
            "transaction_id": self.transaction_id,
            "out_trade_no": self.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": wx.rfc3339(self.created_at),
            "status": self.status,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": self.total,
                "refund": self.refund,
                "payer_total": self.total,
                "payer_refund": self.refund,
                "settlement_refund": self.refund,
                "settlement_total": self.total,
                "discount_refund": 0,
                "currency": "CNY",
            },
        }
        if self.success_time is not None:
            doc["success_time"] = wx.rfc3339(self.success_time)
        return doc


@dataclass
class Delivery:
    """One callback and its attempts."""

    id: str
    event_type: str
    url: str
    out_trade_no: str
    out_refund_no: str | None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    answered: bool = False

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_type": self.event_type,
            "url": self.url,
            "out_trade_no": self.out_trade_no,
            "out_refund_no": self.out_refund_no,
            "answered": self.answered,
            "attempts": self.attempts,
        }


@dataclass
class NextCall:
    action: NextAction
    #: applies to the next request whose path (below the gateway) starts with this
    path_prefix: str = "/v3/"
    seconds: float = TIMEOUT_SECONDS


class SandboxState:
    def __init__(self) -> None:
        #: the directory whose trades these are (`bind`); None: not yet used
        self.root: Path | None = None
        self.transactions: MutableMapping[str, Transaction] = {}
        self.refunds: MutableMapping[str, Refund] = {}
        self.reset()

    def bind(self, root: Path) -> None:
        """Work on the trades kept under `root` (`payment_sandbox_dir/wechatpay`). One process
        serves one sandbox directory; a new one (another test's) replaces the trades."""
        root = root.resolve()
        if root == self.root:
            return
        if self.root is not None:
            store.forget(self.root)
        trades = store.store_at(root)
        self.root = root
        self.transactions = PersistentMap(trades, "transaction", Transaction)
        self.refunds = PersistentMap(trades, "refund", Refund)

    def unbind(self) -> None:
        """Write what is pending and let go of the directory (a restart, as tests play it)."""
        if self.root is not None:
            store.forget(self.root)
        self.root = None
        self.transactions = {}
        self.refunds = {}

    def reset(self) -> None:
        self.transactions.clear()
        self.refunds.clear()
        self.bills: dict[str, bytes] = {}
        self.received: deque[dict[str, Any]] = deque(maxlen=500)
        self.deliveries: list[Delivery] = []
        self.next_calls: list[NextCall] = []
        self.callback_modes: list[CallbackMode] = []
        #: platform certificates and public keys added by a rotation (newest last); the
        #: first of each is the one on disk
        self.extra_certificates: list[PlatformCert] = []
        self.extra_public_keys: list[PlatformPublicKey] = []
        #: where callbacks go instead of the network (like the other sandboxes' Notifier)
        self.transport: httpx.AsyncBaseTransport | None = None
        self._held: list[tuple[Delivery, bytes, SignMode, bool]] = []
        for task in getattr(self, "tasks", set()):
            task.cancel()
        self.tasks: set[asyncio.Task[None]] = set()

    # -- keys -----------------------------------------------------------------------------------

    def certificates(self, keys: SandboxKeys) -> list[PlatformCert]:
        return [keys.certificate, *self.extra_certificates]

    def signer(self, keys: SandboxKeys, mode: SignMode) -> tuple[str, Any]:
        """The (serial, private key) the platform signs with now in `mode`."""
        if mode == "public_key":
            current = ([keys.public_key, *self.extra_public_keys])[-1]
            return current.key_id, current.key
        cert = self.certificates(keys)[-1]
        return cert.serial, cert.key

    def public_key_ids(self, keys: SandboxKeys) -> set[str]:
        return {k.key_id for k in (keys.public_key, *self.extra_public_keys)}

    # -- switches -------------------------------------------------------------------------------

    def take_next(self, target: str, actions: set[str]) -> NextCall | None:
        """The first queued switch among `actions` for a call to `target`. A switch waits for
        a call it means something to (a decline: a payment-code payment, a refund or a reverse)."""
        for i, call in enumerate(self.next_calls):
            if call.action in actions and target.startswith(call.path_prefix):
                return self.next_calls.pop(i)
        return None

    # -- callbacks ------------------------------------------------------------------------------

    def notify(
        self,
        keys: SandboxKeys,
        *,
        event_type: str,
        summary: str,
        original_type: str,
        resource: dict[str, Any],
        url: str,
        sign_mode: SignMode,
        time_scale: float,
        out_trade_no: str,
        out_refund_no: str | None = None,
    ) -> Delivery | None:
        """Encrypt `resource` into a callback and send it to `url` until answered."""
        if not url:
            return None
        now = utcnow()
        nonce = secrets.token_urlsafe(9)[:12]
        associated = original_type
        notification_id = str(uuid.uuid4())
        body: dict[str, Any] = {
            "id": notification_id,
            "create_time": wx.rfc3339(now),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": original_type,
                "algorithm": wx.AEAD,
                "ciphertext": wx.aead_encrypt(
                    keys.api_v3_key,
                    nonce,
                    associated,
                    json.dumps(resource, ensure_ascii=False).encode(),
                ),
                "associated_data": associated,
                "nonce": nonce,
            },
        }
        delivery = Delivery(
            id=notification_id,
            event_type=event_type,
            url=url,
            out_trade_no=out_trade_no,
            out_refund_no=out_refund_no,
        )
        self.deliveries.append(delivery)
        payload = json.dumps(body, ensure_ascii=False).encode()
        mode = self.callback_modes.pop(0) if self.callback_modes else None
        delay = 0.0
        bad_first = False
        if mode == "late":
            delay = LATE_SECONDS / time_scale
        elif mode == "bad_signature":
            bad_first = True
        elif mode == "out_of_order":
            # held back until the next callback has been sent
            self._held.append((delivery, payload, sign_mode, False))
            return delivery
        held, self._held = self._held, []
        # What was held back goes once this one's first attempt has been answered, so the
        # merchant really hears them in the other order (a timer alone races under load).
        sent = asyncio.Event()
        self._spawn(keys, delivery, payload, sign_mode, time_scale, delay, bad_first, sent=sent)
        if mode == "twice":
            twin = Delivery(
                id=delivery.id,
                event_type=event_type,
                url=url,
                out_trade_no=out_trade_no,
                out_refund_no=out_refund_no,
            )
            self.deliveries.append(twin)
            self._spawn(keys, twin, payload, sign_mode, time_scale, 0.05 / time_scale, False)
        for h_delivery, h_payload, h_mode, h_bad in held:
            self._spawn(keys, h_delivery, h_payload, h_mode, time_scale, 0.0, h_bad, after=sent)
        return delivery

    def _spawn(
        self,
        keys: SandboxKeys,
        delivery: Delivery,
        payload: bytes,
        sign_mode: SignMode,
        time_scale: float,
        delay: float,
        bad_first: bool,
        *,
        sent: asyncio.Event | None = None,
        after: asyncio.Event | None = None,
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._deliver(
                keys, delivery, payload, sign_mode, time_scale, delay, bad_first, sent, after
            )
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(
        self,
        keys: SandboxKeys,
        delivery: Delivery,
        payload: bytes,
        sign_mode: SignMode,
        time_scale: float,
        delay: float,
        bad_first: bool,
        sent: asyncio.Event | None = None,
        after: asyncio.Event | None = None,
    ) -> None:
        """Post `delivery` on WeChat's retry schedule until answered 2xx; `after`: wait for it
        first; `sent`: set once the first attempt has had its answer (or failed)."""
        if after is not None:
            await after.wait()
        try:
            await self._attempts(
                keys, delivery, payload, sign_mode, time_scale, delay, bad_first, sent
            )
        finally:
            if sent is not None:
                sent.set()  # never leave what waits on it waiting

    async def _attempts(
        self,
        keys: SandboxKeys,
        delivery: Delivery,
        payload: bytes,
        sign_mode: SignMode,
        time_scale: float,
        delay: float,
        bad_first: bool,
        sent: asyncio.Event | None,
    ) -> None:
        waits = [delay, *(s / time_scale for s in RETRY_SCHEDULE)]
        async with httpx.AsyncClient(transport=self.transport, timeout=CALLBACK_TIMEOUT) as client:
            for attempt, wait in enumerate(waits, start=1):
                if wait > 0:
                    await asyncio.sleep(wait)
                serial, key = self.signer(keys, sign_mode)
                headers = {
                    "Content-Type": "application/json",
                    "Request-ID": str(uuid.uuid4()),
                    **wx.response_headers(
                        key,
                        serial,
                        payload,
                        timestamp=str(int(utcnow().timestamp())),
                        nonce=wx.nonce_str(),
                    ),
                }
                if bad_first and attempt == 1:
                    headers["Wechatpay-Signature"] = wx.sign(key, b"not this callback\n")
                record: dict[str, Any] = {"attempt": attempt, "at": utcnow().isoformat()}
                delivery.attempts.append(record)
                try:
                    response = await client.post(delivery.url, content=payload, headers=headers)
                except httpx.HTTPError as exc:
                    record["error"] = type(exc).__name__
                    continue
                finally:
                    if sent is not None:
                        sent.set()
                record["status"] = response.status_code
                if 200 <= response.status_code < 300:
                    delivery.answered = True
                    return


STATE = SandboxState()
