"""Our UnionPay (ACP 5.1.0 gateway) merchant account: `PlatformAccount` over httpx, for the
terminals' card readers (channel code `card`).

Every message is signed with our certificate (`certId`, `signMethod=01`); every answer and
notification must carry a gateway certificate we trust in `signPubKeyCert` and verify with it
(`PlatformError` / `NotificationRejected` otherwise). Wire details are in docs/payments.md.

The gateway finds a transaction by `orderId` together with the `txnTime` it was sent with. A
consume or refund is sent with the caller's `started_at` as its txnTime (the attempt's record
time), and `query` / `query_refund` / `reverse` name it again from their `started_at`, so any
process can ask about it. Without `started_at` the account falls back on the txnTime it
remembers sending (in this process), else the current time; "no such transaction" (34) is
then an unknown outcome, not a failure.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from selfmart.kit.time import utcnow
from selfmart.payments.channels import ChannelPayment, ChannelRefund, ChannelStatus
from selfmart.payments.platform import (
    BillKind,
    ChannelConfig,
    Notification,
    NotificationAnswer,
    NotificationRejected,
    PayRequest,
    PlatformError,
    RefundSpec,
    register_platform,
)
from selfmart.payments.unionpay import protocol as u

TIMEOUT_SECONDS = 10.0
BACK_TRANS = "/gateway/api/backTransReq.do"
QUERY_TRANS = "/gateway/api/queryTrans.do"
FILE_TRANS = "/gateway/api/fileTransReq.do"
#: fields left out of `raw`: signatures, certificates, card data
_HIDDEN = {"signature", "signPubKeyCert", "accNo", "fileContent"}

#: (merId, orderId) -> the txnTime it was sent with, newest last
_SENT: OrderedDict[tuple[str, str], str] = OrderedDict()
_SENT_MAX = 100_000


def _remember(mer_id: str, order_id: str, txn_time: str) -> None:
    _SENT[(mer_id, order_id)] = txn_time
    _SENT.move_to_end((mer_id, order_id))
    while len(_SENT) > _SENT_MAX:
        _SENT.popitem(last=False)


def _shown(fields: Mapping[str, str]) -> dict[str, str]:
    """The message for the record: no signature, certificate, file or encrypted card number
    (a masked card number, 621626*********0018, is kept)."""
    return {
        k: v
        for k, v in fields.items()
        if k not in _HIDDEN or (k == "accNo" and "*" in v and len(v) <= 19)
    }


class UnionPayAccount:
    code = "card"

    def __init__(self, config: ChannelConfig, *, http: httpx.AsyncClient | None = None) -> None:
        # A client handed in brings its own timeout; ours waits TIMEOUT_SECONDS.
        self.config = config
        self._http = http
        self.base_url = config.base_url.rstrip("/")
        self.channel_type = config.extra.get("channel_type", "07")

    # --- the wire ------------------------------------------------------------------------

    def _message(
        self,
        txn_type: str,
        sub_type: str,
        biz_type: str,
        *,
        at: datetime | None = None,
        **fields: str,
    ) -> dict[str, str]:
        message = {
            "version": u.VERSION,
            "encoding": u.ENCODING,
            "signMethod": u.SIGN_METHOD,
            "certId": self.config.private_key_id,
            "txnType": txn_type,
            "txnSubType": sub_type,
            "bizType": biz_type,
            "accessType": "0",
            "merId": self.config.merchant_id,
            "txnTime": u.format_txn_time(at or utcnow()),
        }
        message.update({k: v for k, v in fields.items() if v})
        return message

    async def _call(
        self, path: str, message: dict[str, str]
    ) -> tuple[dict[str, str], dict[str, Any]]:
        signed = u.sign(message, self.config.private_key_pem)
        raw: dict[str, Any] = {"request": {"url": self.base_url + path, "fields": _shown(signed)}}
        client = self._http or httpx.AsyncClient(timeout=TIMEOUT_SECONDS)
        try:
            response = await client.post(
                self.base_url + path,
                content=urlencode(signed).encode(),
                headers={"content-type": "application/x-www-form-urlencoded;charset=UTF-8"},
            )
        except httpx.TimeoutException as exc:
            # The message may still reach the gateway: the outcome is unknown until asked.
            raise PlatformError(f"UnionPay {path} timed out: {exc!r}", code="timeout") from exc
        except httpx.HTTPError as exc:
            raise PlatformError(f"UnionPay {path}: {type(exc).__name__}: {exc}") from exc
        finally:
            if self._http is None:
                await client.aclose()
        if response.status_code != 200:
            raw["response"] = {"status": response.status_code, "body": response.text[:2000]}
            raise PlatformError(f"UnionPay {path}: HTTP {response.status_code}")
        try:
            fields = u.decode_answer(response.content)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PlatformError(f"UnionPay {path}: unreadable answer: {exc}") from exc
        try:
            u.verify_gateway(fields, self.config.platform_public_keys)
        except u.SignatureError as exc:
            raise PlatformError(f"UnionPay {path}: {exc}", code="bad_signature") from exc
        raw["response"] = {"status": response.status_code, "fields": _shown(fields)}
        return fields, raw

    def _txn_time(self, order_id: str, started_at: datetime | None = None) -> str | None:
        if started_at is not None:
            return u.format_txn_time(started_at)
        return _SENT.get((self.config.merchant_id, order_id))

    @staticmethod
    def _order_id(value: str, name: str) -> str:
        if not u.valid_order_id(value):
            raise ValueError(f"UnionPay {name} must be 8-32 letters and digits, not {value!r}")
        return value

    # --- payments ------------------------------------------------------------------------

    async def pay(self, request: PayRequest) -> ChannelPayment:
        if request.mode != "card":
            raise ValueError(f"UnionPay takes card payments, not {request.mode!r}")
        if not request.auth_code:
            raise ValueError("a card payment needs the card number the reader read (auth_code)")
        encrypt_cert = self.config.extra.get("encrypt_cert", "")
        if not encrypt_cert:
            raise ValueError("UnionPay needs the gateway's encryption certificate (extra)")
        order_id = self._order_id(request.out_trade_no, "orderId")
        if self._txn_time(order_id) is not None:
            # A resend: never a second consume for an order that was (or may have been) paid.
            earlier = await self.query(order_id, started_at=request.started_at)
            if earlier.status != "failed":
                return earlier
        message = self._message(
            u.CONSUME,
            "01",
            u.BIZ_GATEWAY,
            at=request.started_at,
            channelType=self.channel_type,
            orderId=order_id,
            txnAmt=str(request.amount_fen),
            currencyCode=u.CURRENCY,
            backUrl=request.notify_url or self.config.notify_url,
            accNo=u.encrypt_sensitive(request.auth_code, encrypt_cert),
            encryptCertId=self.config.extra.get("encrypt_cert_id", "") or u.cert_id(encrypt_cert),
            payTimeout=u.format_txn_time(request.expires_at) if request.expires_at else "",
        )
        _remember(self.config.merchant_id, order_id, message["txnTime"])
        fields, raw = await self._call(BACK_TRANS, message)
        code = fields.get("respCode", "")
        if code == u.OK or code in u.PENDING_CODES:
            # 00 says only that the gateway took it; the result is the query's (or backUrl's)
            try:
                found = await self.query(order_id, started_at=request.started_at)
            except PlatformError:
                found = None
            if found is not None and found.status != "unknown":
                return ChannelPayment(
                    status=found.status,
                    amount_fen=found.amount_fen or request.amount_fen,
                    channel_txn_id=found.channel_txn_id or fields.get("queryId"),
                    paid_at=found.paid_at,
                    failure_code=found.failure_code,
                    failure_reason=found.failure_reason,
                    raw={**raw, "query": found.raw},
                )
            return ChannelPayment(
                status="pending",
                amount_fen=request.amount_fen,
                channel_txn_id=fields.get("queryId") or None,
                raw=raw,
            )
        return ChannelPayment(
            status="failed",
            amount_fen=request.amount_fen,
            failure_code=code,
            failure_reason=fields.get("respMsg") or code,
            raw=raw,
        )

    async def _query_order(
        self, order_id: str, started_at: datetime | None = None
    ) -> tuple[dict[str, str], dict[str, Any], bool]:
        """Query by orderId and the txnTime it was sent with (`started_at`, else what this
        process remembers sending). Neither known, the query goes out with the current time:
        a signed 34 then proves the keys but not that the order does not exist (the third
        value says whether the txnTime was known)."""
        message = self._message(u.QUERY, "00", u.BIZ_DEFAULT, orderId=order_id)
        known = self._txn_time(order_id, started_at)
        if known is not None:
            message["txnTime"] = known
        fields, raw = await self._call(QUERY_TRANS, message)
        return fields, raw, known is not None

    async def query(
        self, out_trade_no: str, *, started_at: datetime | None = None
    ) -> ChannelPayment:
        fields, raw, known = await self._query_order(out_trade_no, started_at)
        code = fields.get("respCode", "")
        if code == u.NOT_FOUND:
            return ChannelPayment(
                status="failed" if known else "unknown",
                amount_fen=0,
                failure_code=code,
                failure_reason=fields.get("respMsg") or code,
                raw=raw,
                not_found=True,
            )
        if code != u.OK:
            return ChannelPayment(
                status="unknown",
                amount_fen=0,
                failure_code=code,
                failure_reason=fields.get("respMsg") or code,
                raw=raw,
            )
        status = self._status(fields.get("origRespCode", ""))
        return ChannelPayment(
            status=status,
            amount_fen=int(fields.get("txnAmt") or 0),
            channel_txn_id=fields.get("queryId") or None,
            paid_at=self._paid_at(fields) if status == "succeeded" else None,
            failure_code=fields.get("origRespCode") if status == "failed" else None,
            failure_reason=fields.get("origRespMsg") if status == "failed" else None,
            raw=raw,
        )

    async def close(self, out_trade_no: str) -> ChannelPayment:
        """A card consume cannot be closed: it is decided at once. Say what it is; a paid one
        is for `reverse` or a refund."""
        return await self.query(out_trade_no)

    async def reverse(
        self, out_trade_no: str, *, started_at: datetime | None = None
    ) -> ChannelPayment:
        """Consume undo (31) the same day; after settlement the gateway refuses (35) and a
        refund (04) for the whole amount gives the money back instead."""
        found = await self.query(out_trade_no, started_at=started_at)
        if found.status != "succeeded":
            return found
        undo_id = out_trade_no[:31] + "C"
        message = self._message(
            u.CONSUME_UNDO,
            "00",
            u.BIZ_GATEWAY,
            channelType=self.channel_type,
            orderId=undo_id,
            txnAmt=str(found.amount_fen),
            origQryId=found.channel_txn_id or "",
            backUrl=self.config.notify_url,
        )
        _remember(self.config.merchant_id, undo_id, message["txnTime"])
        fields, raw = await self._call(BACK_TRANS, message)
        code = fields.get("respCode", "")
        if code == u.ORIGINAL_BAD_STATE:
            refund_id = out_trade_no[:31] + "R"
            refunded = await self.refund(
                RefundSpec(
                    out_trade_no=out_trade_no,
                    out_refund_no=refund_id,
                    total_fen=found.amount_fen,
                    amount_fen=found.amount_fen,
                    transaction_id=found.channel_txn_id,
                )
            )
            raw = {**raw, "refund": refunded.raw}
            code = u.OK if refunded.status in ("succeeded", "pending") else code
        if code == u.OK or code in u.PENDING_CODES:
            return ChannelPayment(
                status="failed",
                amount_fen=0,
                channel_txn_id=found.channel_txn_id,
                failure_code="TRADE_CANCELLED",
                failure_reason="consume undone",
                raw=raw,
            )
        return ChannelPayment(
            status="unknown",
            amount_fen=found.amount_fen,
            channel_txn_id=found.channel_txn_id,
            failure_code=code,
            failure_reason=fields.get("respMsg") or code,
            raw=raw,
        )

    # --- refunds -------------------------------------------------------------------------

    async def refund(self, spec: RefundSpec) -> ChannelRefund:
        order_id = self._order_id(spec.out_refund_no, "refund orderId")
        original = spec.transaction_id
        if not original:
            original = (await self.query(spec.out_trade_no)).channel_txn_id  # txnTime unknown
        if not original:
            return ChannelRefund(
                status="failed",
                failure_code=u.ORIGINAL_BAD_STATE,
                failure_reason="the payment's queryId is not known",
            )
        message = self._message(
            u.REFUND,
            "00",
            u.BIZ_GATEWAY,
            at=spec.started_at,
            channelType=self.channel_type,
            orderId=order_id,
            txnAmt=str(spec.amount_fen),
            origQryId=original,
            backUrl=spec.notify_url or self.config.notify_url,
        )
        _remember(self.config.merchant_id, order_id, message["txnTime"])
        fields, raw = await self._call(BACK_TRANS, message)
        code = fields.get("respCode", "")
        # DUPLICATE: this refund (orderId and txnTime) was sent before, by a run that did not
        # live to hear the answer (payments.twophase); the query says what became of it.
        if code == u.OK or code in u.PENDING_CODES or code == u.DUPLICATE:
            try:
                found = await self.query_refund(
                    spec.out_trade_no, order_id, started_at=spec.started_at
                )
            except PlatformError:
                found = None
            if found is not None and found.status != "unknown":
                return ChannelRefund(
                    status=found.status,
                    channel_refund_id=found.channel_refund_id,
                    completed_at=found.completed_at,
                    failure_code=found.failure_code,
                    failure_reason=found.failure_reason,
                    raw={**raw, "query": found.raw},
                )
            return ChannelRefund(
                status="pending", channel_refund_id=fields.get("queryId") or None, raw=raw
            )
        return ChannelRefund(
            status="failed",
            failure_code=code,
            failure_reason=fields.get("respMsg") or code,
            raw=raw,
        )

    async def query_refund(
        self, out_trade_no: str, out_refund_no: str, *, started_at: datetime | None = None
    ) -> ChannelRefund:
        fields, raw, known = await self._query_order(out_refund_no, started_at)
        code = fields.get("respCode", "")
        if code != u.OK:
            return ChannelRefund(
                status="failed" if code == u.NOT_FOUND and known else "unknown",
                failure_code=code,
                failure_reason=fields.get("respMsg") or code,
                raw=raw,
                not_found=code == u.NOT_FOUND and known,
            )
        status = self._status(fields.get("origRespCode", ""))
        return ChannelRefund(
            status=status,
            channel_refund_id=fields.get("queryId") or None,
            completed_at=utcnow() if status == "succeeded" else None,
            failure_code=fields.get("origRespCode") if status == "failed" else None,
            failure_reason=fields.get("origRespMsg") if status == "failed" else None,
            raw=raw,
        )

    # --- callbacks -----------------------------------------------------------------------

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise NotificationRejected(f"not a form body: {exc}", code="malformed") from None
        fields = dict(pairs)
        if len(fields) != len(pairs):
            raise NotificationRejected("a field is repeated", code="malformed")
        try:
            u.verify_gateway(fields, self.config.platform_public_keys)
        except u.SignatureError as exc:
            raise NotificationRejected(str(exc)) from None
        if fields.get("merId") != self.config.merchant_id:
            raise NotificationRejected(
                f"merId {fields.get('merId')!r} is not ours", code="wrong_merchant"
            )
        txn_type = fields.get("txnType", "")
        try:
            amount = u.parse_amount(fields.get("txnAmt", ""))
            order_id = fields["orderId"]
            code = fields["respCode"]
            u.parse_txn_time(fields.get("txnTime", ""))
        except (KeyError, ValueError) as exc:
            raise NotificationRejected(f"bad or missing field: {exc}", code="malformed") from None
        if txn_type not in (u.CONSUME, u.CONSUME_UNDO, u.REFUND):
            raise NotificationRejected(f"unexpected txnType {txn_type!r}", code="malformed")
        status = self._status(code)
        raw = _shown(fields)
        query_id = fields.get("queryId") or None
        common: dict[str, Any] = {
            "merchant_id": fields["merId"],
            "app_id": "",
            "amount_fen": amount,
            "occurred_at": utcnow(),
            "notification_id": f"{query_id}:{code}" if query_id else None,
            "raw": raw,
            "failure_reason": (
                f"{code}: {fields.get('respMsg') or code}" if status == "failed" else None
            ),
        }
        if txn_type == u.CONSUME:
            return Notification(
                kind="payment",
                out_trade_no=order_id,
                status=status,
                transaction_id=query_id,
                **common,
            )
        # undo / refund: orderId is the refund's own; origQryId names the payment
        return Notification(
            kind="refund",
            out_trade_no="",
            status=status,
            transaction_id=fields.get("origQryId") or None,
            out_refund_no=order_id,
            refund_id=query_id,
            **common,
        )

    def answer_notification(self, ok: bool, message: str = "") -> NotificationAnswer:
        # The gateway stops resending on HTTP 200; anything else is sent again.
        if ok:
            return NotificationAnswer(200, "text/plain", b"ok")
        return NotificationAnswer(400, "text/plain", (message or "rejected").encode()[:200])

    # --- bills ---------------------------------------------------------------------------

    async def download_bill(self, bill_date: date, kind: BillKind = "trade") -> bytes | None:
        """The day's reconciliation zip (fileType 00: the ZM file, `protocol.read_archive`
        reads it), inflated from fileContent; None when the gateway has no file (98)."""
        message = self._message(
            u.FILE_TRANSFER,
            "01",
            u.BIZ_DEFAULT,
            settleDate=bill_date.strftime("%m%d"),
            fileType="00",
        )
        fields, _raw = await self._call(FILE_TRANS, message)
        code = fields.get("respCode", "")
        if code == u.FILE_NOT_FOUND:
            return None
        if code != u.OK or not fields.get("fileContent"):
            raise PlatformError(
                f"UnionPay file: {code} {fields.get('respMsg', '')}", code=code or "refused"
            )
        try:
            return u.decode_file_content(fields["fileContent"])
        except ValueError as exc:
            raise PlatformError(f"UnionPay file: unreadable fileContent: {exc}") from exc

    # --- mapping -------------------------------------------------------------------------

    @staticmethod
    def _status(code: str) -> ChannelStatus:
        if code == u.OK:
            return "succeeded"
        if code in u.PENDING_CODES:
            return "pending"
        return "failed"

    @staticmethod
    def _paid_at(fields: Mapping[str, str]) -> datetime:
        try:
            return u.parse_txn_time(fields.get("txnTime", ""))
        except ValueError:
            return utcnow()


register_platform("card", UnionPayAccount)
