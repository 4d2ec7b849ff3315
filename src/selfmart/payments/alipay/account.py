"""Our Alipay open platform account: `PlatformAccount` over httpx.

Every call is a form POST to `{base_url}/gateway.do` signed with RSA2; every answer's
signature is checked over the exact text of its `..._response` before anything in it is
believed (`PlatformError` otherwise). Wire details are in docs/payments.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from selfmart.kit.time import utcnow
from selfmart.payments.alipay import protocol as p
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

TIMEOUT_SECONDS = 10.0
#: a notification older than this is refused (Alipay's last retry comes ~25 h after the first)
NOTIFY_MAX_AGE = timedelta(hours=26)

TRADE_STATUSES: dict[str, ChannelStatus] = {
    "WAIT_BUYER_PAY": "pending",
    "TRADE_SUCCESS": "succeeded",
    "TRADE_FINISHED": "succeeded",
    "TRADE_CLOSED": "failed",
}
NOTIFY_STATUSES = {
    "WAIT_BUYER_PAY": "pending",
    "TRADE_SUCCESS": "succeeded",
    "TRADE_FINISHED": "succeeded",
    "TRADE_CLOSED": "closed",
}
#: request parameters that are credentials or signatures, left out of `raw`
_SECRET_PARAMS = {"sign", "auth_code"}


class _Answer:
    def __init__(self, answer: p.GatewayAnswer, raw: dict[str, Any]) -> None:
        self.payload = answer.payload
        self.code = answer.code
        self.sub_code = answer.sub_code
        self.raw = raw

    @property
    def message(self) -> str:
        return str(self.payload.get("sub_msg") or self.payload.get("msg") or self.code)

    def get(self, name: str) -> str:
        value = self.payload.get(name)
        return "" if value is None else str(value)

    def fen(self, name: str) -> int:
        """A yuan amount of the answer in fen (0 when absent); a malformed one makes the
        whole answer unreadable."""
        text = self.get(name)
        if not text:
            return 0
        try:
            return p.yuan_to_fen(text)
        except ValueError as exc:
            raise PlatformError(f"Alipay answered a malformed {name}: {exc}") from None


class AlipayAccount:
    code = "alipay"

    def __init__(self, config: ChannelConfig, *, http: httpx.AsyncClient | None = None) -> None:
        # A client handed in brings its own timeout; ours waits TIMEOUT_SECONDS.
        self.config = config
        self._http = http
        self.sign_type = config.extra.get("sign_type", "RSA2")
        self.gateway_url = config.base_url.rstrip("/") + "/gateway.do"
        try:
            self.platform_key = config.platform_public_keys[""]
        except KeyError:
            keys = list(config.platform_public_keys.values())
            if not keys:
                raise ValueError("Alipay needs Alipay's public key") from None
            self.platform_key = keys[0]

    # --- the wire ------------------------------------------------------------------------

    def signed_params(
        self, method: str, biz: Mapping[str, Any], **common: str | None
    ) -> dict[str, str]:
        params: dict[str, str] = {
            "app_id": self.config.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": self.sign_type,
            "timestamp": p.format_time(utcnow()),
            "version": "1.0",
            "biz_content": json.dumps(
                {k: v for k, v in biz.items() if v is not None},
                ensure_ascii=False,
                separators=(",", ":"),
            ),
        }
        params.update({k: v for k, v in common.items() if v})
        return p.sign_params(params, self.config.private_key_pem)

    async def _call(self, method: str, biz: Mapping[str, Any], **common: str | None) -> _Answer:
        params = self.signed_params(method, biz, **common)
        shown: dict[str, Any] = {k: v for k, v in params.items() if k not in _SECRET_PARAMS}
        shown["biz_content"] = {k: v for k, v in biz.items() if k != "auth_code"}
        raw: dict[str, Any] = {"request": {"url": self.gateway_url, "params": shown}}
        client = self._http or httpx.AsyncClient(timeout=TIMEOUT_SECONDS)
        try:
            response = await client.post(
                self.gateway_url,
                content=urlencode(params).encode(),
                headers={"content-type": "application/x-www-form-urlencoded;charset=utf-8"},
            )
        except httpx.TimeoutException as exc:
            # The request may still reach Alipay: the outcome is unknown until asked.
            raise PlatformError(f"Alipay {method} timed out: {exc!r}", code="timeout") from exc
        except httpx.HTTPError as exc:
            raise PlatformError(f"Alipay {method}: {type(exc).__name__}: {exc}") from exc
        finally:
            if self._http is None:
                await client.aclose()
        raw["response"] = {"status": response.status_code, "body": response.text[:4000]}
        if response.status_code != 200:
            raise PlatformError(f"Alipay {method}: HTTP {response.status_code}")
        try:
            answer = p.decode_response(method, response.content, self.platform_key)
        except p.SignatureError as exc:
            raise PlatformError(f"Alipay {method}: {exc}", code="bad_signature") from exc
        except ValueError as exc:
            raise PlatformError(f"Alipay {method}: unreadable answer: {exc}") from exc
        if not answer.signed:
            # The gateway refused the request itself (bad app id, signature, parameters):
            # an unsigned answer proves nothing beyond that, so it is no business answer.
            raise PlatformError(
                f"Alipay {method}: {answer.code} {answer.sub_code} "
                f"{answer.payload.get('sub_msg', '')}".strip(),
                code=answer.sub_code or "platform_refused",
            )
        raw["response"]["payload"] = answer.payload
        return _Answer(answer, raw)

    # --- payments ------------------------------------------------------------------------

    async def pay(self, request: PayRequest) -> ChannelPayment:
        biz: dict[str, Any] = {
            "out_trade_no": request.out_trade_no,
            "total_amount": p.fen_to_yuan(request.amount_fen),
            "subject": request.description[:256] or request.out_trade_no,
        }
        if request.expires_at is not None:
            biz["time_expire"] = p.format_time(request.expires_at)
        if request.store_ref:
            biz["store_id"] = request.store_ref
        notify_url = request.notify_url or self.config.notify_url or None
        if request.mode == "code":
            if not request.auth_code:
                raise ValueError("a payment-code payment needs the customer's auth_code")
            biz.update(scene="bar_code", auth_code=request.auth_code)
            answer = await self._call("alipay.trade.pay", biz, notify_url=notify_url)
            if answer.sub_code == "ACQ.TRADE_HAS_SUCCESS":
                # a resend of a payment that went through: say so, not "refused"
                return await self.query(request.out_trade_no)
            if answer.code == p.USER_PAYING:
                return self._payment(answer, "pending", request.amount_fen)
            return self._payment_answer(answer, request.amount_fen)
        if request.mode == "qr":
            answer = await self._call("alipay.trade.precreate", biz, notify_url=notify_url)
            if answer.sub_code == "ACQ.TRADE_HAS_SUCCESS":
                return await self.query(request.out_trade_no)
            if answer.code != p.SUCCESS:
                return self._payment_answer(answer, request.amount_fen)
            return self._payment(
                answer, "pending", request.amount_fen, pay_url=answer.get("qr_code")
            )
        if request.mode == "h5":
            biz["product_code"] = "QUICK_WAP_WAY"
            if request.return_url:
                biz["quit_url"] = request.return_url
            params = self.signed_params(
                "alipay.trade.wap.pay", biz, notify_url=notify_url, return_url=request.return_url
            )
            url = self.gateway_url + "?" + urlencode(params)
            shown = {k: v for k, v in params.items() if k != "sign"}
            return ChannelPayment(
                status="pending",
                amount_fen=request.amount_fen,
                pay_url=url,
                raw={"request": {"url": self.gateway_url, "params": shown}},
            )
        raise ValueError(f"Alipay does not take mode {request.mode!r}")

    async def query(
        self, out_trade_no: str, *, started_at: datetime | None = None
    ) -> ChannelPayment:
        answer = await self._call("alipay.trade.query", {"out_trade_no": out_trade_no})
        if answer.code == p.BUSINESS_FAILED and answer.sub_code == "ACQ.TRADE_NOT_EXIST":
            # Nothing was paid: a QR or phone-page payment the customer has not opened yet
            # is in this state too, so it is still pending rather than failed.
            return replace(self._payment(answer, "pending", 0, failure=True), not_found=True)
        if answer.code != p.SUCCESS:
            return self._payment_answer(answer, 0)
        return self._trade(answer)

    async def close(self, out_trade_no: str) -> ChannelPayment:
        """Close an unpaid trade. A phone-page payment not opened yet has no trade to close
        (TRADE_NOT_EXIST, taken as closed): what stops it being paid later is the
        `time_expire` sent with it (`PayRequest.expires_at`)."""
        answer = await self._call("alipay.trade.close", {"out_trade_no": out_trade_no})
        if answer.code == p.SUCCESS or answer.sub_code == "ACQ.TRADE_NOT_EXIST":
            return ChannelPayment(
                status="failed",
                amount_fen=0,
                channel_txn_id=answer.get("trade_no") or None,
                failure_code="TRADE_CLOSED",
                failure_reason="closed before it was paid",
                raw=answer.raw,
            )
        if answer.sub_code == "ACQ.TRADE_STATUS_ERROR":
            # Paid (or already closed) meanwhile: say what it is now.
            return await self.query(out_trade_no)
        return self._payment_answer(answer, 0)

    async def reverse(
        self, out_trade_no: str, *, started_at: datetime | None = None
    ) -> ChannelPayment:
        answer = await self._call("alipay.trade.cancel", {"out_trade_no": out_trade_no})
        if answer.code == p.SUCCESS and answer.get("retry_flag") != "Y":
            action = answer.get("action") or "close"
            return ChannelPayment(
                status="failed",
                amount_fen=0,
                channel_txn_id=answer.get("trade_no") or None,
                failure_code="TRADE_CANCELLED",
                failure_reason=f"cancelled ({action})",
                raw=answer.raw,
            )
        if answer.code == p.SUCCESS or answer.code == p.UNKNOWN:
            return self._payment(answer, "unknown", 0, failure=True)
        return self._payment_answer(answer, 0)

    # --- refunds -------------------------------------------------------------------------

    async def refund(self, spec: RefundSpec) -> ChannelRefund:
        biz = {
            "out_trade_no": spec.out_trade_no,
            "trade_no": spec.transaction_id,
            "refund_amount": p.fen_to_yuan(spec.amount_fen),
            "out_request_no": spec.out_refund_no,
            "refund_reason": spec.reason[:256] or None,
        }
        answer = await self._call("alipay.trade.refund", biz)
        if answer.code == p.SUCCESS:
            if answer.get("fund_change") == "Y":
                return ChannelRefund(
                    status="succeeded",
                    channel_refund_id=spec.out_refund_no,
                    completed_at=self._time(answer.get("gmt_refund_pay")) or utcnow(),
                    raw=answer.raw,
                )
            # fund_change N: a repeat of a refund already made, or still in progress.
            return await self.query_refund(spec.out_trade_no, spec.out_refund_no)
        return self._refund_answer(answer)

    async def query_refund(
        self, out_trade_no: str, out_refund_no: str, *, started_at: datetime | None = None
    ) -> ChannelRefund:
        biz = {
            "out_trade_no": out_trade_no,
            "out_request_no": out_refund_no,
            "query_options": ["gmt_refund_pay"],
        }
        answer = await self._call("alipay.trade.fastpay.refund.query", biz)
        if answer.code != p.SUCCESS:
            return self._refund_answer(answer)
        if not answer.get("refund_amount"):
            return ChannelRefund(
                status="failed",
                failure_code="REFUND_NOT_EXIST",
                failure_reason="Alipay has no such refund",
                raw=answer.raw,
                not_found=True,
            )
        status = answer.get("refund_status") or "REFUND_SUCCESS"
        return ChannelRefund(
            status="succeeded" if status == "REFUND_SUCCESS" else "pending",
            channel_refund_id=out_refund_no,
            completed_at=self._time(answer.get("gmt_refund_pay")),
            raw=answer.raw,
        )

    # --- callbacks -----------------------------------------------------------------------

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise NotificationRejected(f"not a form body: {exc}", code="malformed") from None
        params = dict(pairs)
        if len(params) != len(pairs):
            raise NotificationRejected("a parameter is repeated", code="malformed")
        try:
            p.verify_notification(params, self.platform_key)
        except p.SignatureError as exc:
            raise NotificationRejected(str(exc)) from None
        if params.get("app_id") != self.config.app_id:
            raise NotificationRejected(
                f"app_id {params.get('app_id')!r} is not ours", code="wrong_merchant"
            )
        seller = params.get("seller_id", "")
        if self.config.merchant_id and seller and seller != self.config.merchant_id:
            raise NotificationRejected(f"seller_id {seller!r} is not ours", code="wrong_merchant")
        try:
            sent_at = p.parse_time(params["notify_time"])
            status = params["trade_status"]
            out_trade_no = params["out_trade_no"]
            total_fen = p.yuan_to_fen(params["total_amount"])
            refund_fen = p.yuan_to_fen(params["refund_fee"]) if params.get("refund_fee") else None
        except (KeyError, ValueError) as exc:
            raise NotificationRejected(f"bad or missing field: {exc}", code="malformed") from None
        if status not in NOTIFY_STATUSES:
            raise NotificationRejected(f"unknown trade_status {status!r}", code="malformed")
        if utcnow() - sent_at > NOTIFY_MAX_AGE:
            raise NotificationRejected(
                f"notify_time {params['notify_time']} is stale", code="stale"
            )
        raw = {k: v for k, v in params.items() if k != "sign"}
        common: dict[str, Any] = {
            "merchant_id": seller,
            "app_id": params["app_id"],
            "out_trade_no": out_trade_no,
            "transaction_id": params.get("trade_no") or None,
            "notification_id": params.get("notify_id") or None,
            "raw": raw,
        }
        if refund_fen is not None or params.get("out_biz_no"):
            # A refund: refund_fee is everything refunded on the trade so far.
            return Notification(
                kind="refund",
                status="succeeded",
                amount_fen=refund_fen or 0,
                out_refund_no=params.get("out_biz_no") or None,
                refund_id=params.get("out_biz_no") or None,
                cumulative_refund=True,
                occurred_at=self._time(params.get("gmt_refund", "")[:19]) or sent_at,
                **common,
            )
        return Notification(
            kind="payment",
            status=NOTIFY_STATUSES[status],
            amount_fen=total_fen,
            occurred_at=self._time(params.get("gmt_payment") or params.get("gmt_close") or "")
            or sent_at,
            **common,
        )

    def answer_notification(self, ok: bool, message: str = "") -> NotificationAnswer:
        # Alipay stops retrying only on the exact body `success`; anything else is a failure.
        return NotificationAnswer(200, "text/plain", b"success" if ok else b"fail")

    # --- bills ---------------------------------------------------------------------------

    async def download_bill(self, bill_date: date, kind: BillKind = "trade") -> bytes | None:
        """The day's bill zip (`{pid}_{yyyymmdd}.csv.zip`: the 业务明细 and its 汇总, GBK);
        `protocol.parse_bill` reads it. None when Alipay has no bill for the day."""
        biz = {
            "bill_type": "trade" if kind == "trade" else "signcustomer",
            "bill_date": bill_date.isoformat(),
        }
        answer = await self._call("alipay.data.dataservice.bill.downloadurl.query", biz)
        if answer.sub_code == "isp.bill_not_exist":
            return None
        url = answer.get("bill_download_url")
        if answer.code != p.SUCCESS or not url:
            raise PlatformError(
                f"Alipay bill: {answer.code} {answer.sub_code} {answer.message}",
                code=answer.sub_code or "platform_refused",
            )
        client = self._http or httpx.AsyncClient(timeout=TIMEOUT_SECONDS)
        try:
            response = await client.get(url)
        except httpx.HTTPError as exc:
            raise PlatformError(f"Alipay bill download: {type(exc).__name__}: {exc}") from exc
        finally:
            if self._http is None:
                await client.aclose()
        if response.status_code != 200:
            raise PlatformError(f"Alipay bill download: HTTP {response.status_code}")
        return response.content

    # --- mapping -------------------------------------------------------------------------

    @staticmethod
    def _time(text: str | None) -> datetime | None:
        if not text:
            return None
        try:
            return p.parse_time(text)
        except ValueError:
            return None

    def _payment(
        self,
        answer: _Answer,
        status: ChannelStatus,
        amount_fen: int,
        *,
        pay_url: str | None = None,
        failure: bool = False,
    ) -> ChannelPayment:
        return ChannelPayment(
            status=status,
            amount_fen=amount_fen,
            channel_txn_id=answer.get("trade_no") or None,
            pay_url=pay_url or None,
            failure_code=(answer.sub_code or answer.code) if failure else None,
            failure_reason=answer.message if failure else None,
            raw=answer.raw,
        )

    def _payment_answer(self, answer: _Answer, amount_fen: int) -> ChannelPayment:
        """A pay/query/close answer that is not 10000-with-a-trade: business refusals fail;
        20000 means the outcome is unknown."""
        if answer.code == p.SUCCESS:
            return ChannelPayment(
                status="succeeded",
                amount_fen=answer.fen("total_amount") or amount_fen,
                channel_txn_id=answer.get("trade_no") or None,
                paid_at=self._time(answer.get("gmt_payment")) or utcnow(),
                raw=answer.raw,
            )
        if answer.code == p.UNKNOWN:
            return self._payment(answer, "unknown", amount_fen, failure=True)
        return self._payment(answer, "failed", amount_fen, failure=True)

    def _trade(self, answer: _Answer) -> ChannelPayment:
        status = TRADE_STATUSES.get(answer.get("trade_status"), "unknown")
        closed = answer.get("trade_status") == "TRADE_CLOSED"
        paid_at = self._time(answer.get("send_pay_date"))
        reason = None
        if closed:
            # TRADE_CLOSED is also what a trade paid and then refunded in full (or cancelled
            # after payment) becomes; send_pay_date tells the two apart.
            reason = (
                "closed after it was paid and refunded in full"
                if paid_at
                else "closed before it was paid"
            )
        return ChannelPayment(
            status=status,
            amount_fen=answer.fen("total_amount"),
            channel_txn_id=answer.get("trade_no") or None,
            paid_at=paid_at if status == "succeeded" or closed else None,
            failure_code="TRADE_CLOSED" if closed else None,
            failure_reason=reason,
            raw=answer.raw,
        )

    def _refund_answer(self, answer: _Answer) -> ChannelRefund:
        return ChannelRefund(
            status="unknown" if answer.code == p.UNKNOWN else "failed",
            failure_code=answer.sub_code or answer.code,
            failure_reason=answer.message,
            raw=answer.raw,
        )


register_platform("alipay", AlipayAccount)
