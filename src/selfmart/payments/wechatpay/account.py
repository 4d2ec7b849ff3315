"""Our WeChat Pay (API v3, direct merchant) account: `PlatformAccount` over httpx.

Every answer's signature is verified against the platform key its `Wechatpay-Serial` names
(two are configured during a rotation); an answer that fails is never believed
(`PlatformError`). Wire details are in docs/payments.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import zlib
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

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
from selfmart.payments.wechatpay import protocol as wx

USER_AGENT = "selfmart-wechatpay/1"
TIMEOUT_SECONDS = 10.0
#: the codes saying there is no such transaction (the query's, and the resource's)
NOT_FOUND = frozenset({"ORDER_NOT_EXIST", "RESOURCE_NOT_EXISTS"})

#: trade_state -> our status (REFUND: it was paid, refunds are tracked on their own)
TRADE_STATES: dict[str, ChannelStatus] = {
    "SUCCESS": "succeeded",
    "REFUND": "succeeded",
    "NOTPAY": "pending",
    "USERPAYING": "pending",
    "ACCEPT": "pending",
    "CLOSED": "failed",
    "REVOKED": "failed",
    "PAYERROR": "failed",
}
REFUND_STATES: dict[str, ChannelStatus] = {
    "SUCCESS": "succeeded",
    "PROCESSING": "pending",
    "CLOSED": "failed",
    "ABNORMAL": "failed",
}
_PAY_PATHS = {
    "code": "/v3/pay/transactions/codepay",
    "qr": "/v3/pay/transactions/native",
    "h5": "/v3/pay/transactions/h5",
    "jsapi": "/v3/pay/transactions/jsapi",
}


class _Answer:
    """One verified platform answer."""

    def __init__(self, status: int, data: dict[str, Any], raw: dict[str, Any]) -> None:
        self.status = status
        self.data = data
        self.raw = raw

    @property
    def code(self) -> str:
        return str(self.data.get("code") or "")

    @property
    def message(self) -> str:
        return str(self.data.get("message") or self.code)


class WechatPayAccount:
    code = "wechat"

    def __init__(self, config: ChannelConfig, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._http = http
        self._key = wx.load_private_key(config.private_key_pem)
        self._platform_keys: dict[str, rsa.RSAPublicKey] = {
            key_id: wx.load_public_key(pem) for key_id, pem in config.platform_public_keys.items()
        }
        # Public-key mode: naming our platform public key in `Wechatpay-Serial` asks the
        # platform to sign with it rather than with its certificate.
        self._public_key_id = next(
            (
                k
                for k in sorted(config.platform_public_keys)
                if k.startswith(wx.PUBLIC_KEY_ID_PREFIX)
            ),
            None,
        )

    # -- payments -----------------------------------------------------------------------------

    async def pay(self, request: PayRequest) -> ChannelPayment:
        c = self.config
        body: dict[str, Any] = {
            "appid": c.app_id,
            "mchid": c.merchant_id,
            "description": request.description[:127] or request.out_trade_no,
            "out_trade_no": request.out_trade_no,
            "amount": {"total": request.amount_fen, "currency": "CNY"},
        }
        if request.mode == "code":
            body["payer"] = {"auth_code": request.auth_code or ""}
            body["scene_info"] = {
                "store_info": {"out_id": request.store_ref or "selfmart"},
                "device_ip": request.client_ip,
            }
        else:
            body["notify_url"] = request.notify_url or c.notify_url
            if request.expires_at is not None:
                body["time_expire"] = wx.rfc3339(request.expires_at)
            if request.mode == "h5":
                body["scene_info"] = {
                    "payer_client_ip": request.client_ip,
                    "h5_info": {"type": "Wap"},
                }
            elif request.mode == "jsapi":
                body["payer"] = {"openid": request.payer_id or ""}
            if request.store_ref and request.mode != "h5":
                body["scene_info"] = {
                    "payer_client_ip": request.client_ip,
                    "store_info": {"id": request.store_ref},
                }
        path = _PAY_PATHS.get(request.mode)
        if path is None:
            raise PlatformError(f"WeChat Pay has no {request.mode!r} payments", code="unsupported")
        answer = await self._call("POST", path, body)
        if request.mode == "code":
            if answer.status == 202 or answer.code == "USERPAYING":
                return ChannelPayment(
                    status="pending", amount_fen=request.amount_fen, raw=answer.raw
                )
            if answer.code == "ORDERPAID":
                # paid by an earlier attempt under this number: the query says with what
                return await self.query(request.out_trade_no)
            if answer.status >= 400:
                return self._refused(answer, request.amount_fen)
            return self._payment(answer)
        if answer.status >= 400:
            if answer.code == "ORDERPAID":
                return await self.query(request.out_trade_no)
            return self._refused(answer, request.amount_fen)
        pay_url = {
            "qr": answer.data.get("code_url"),
            "h5": answer.data.get("h5_url"),
            "jsapi": answer.data.get("prepay_id"),
        }[request.mode]
        if not pay_url:
            raise PlatformError("WeChat Pay answered without the payment's URL", code="bad_answer")
        if request.mode == "h5" and request.return_url:
            pay_url = f"{pay_url}&redirect_url={quote(request.return_url, safe='')}"
        return ChannelPayment(
            status="pending", amount_fen=request.amount_fen, pay_url=str(pay_url), raw=answer.raw
        )

    async def query(
        self, out_trade_no: str, *, started_at: datetime | None = None
    ) -> ChannelPayment:
        path = (
            f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}"
            f"?mchid={quote(self.config.merchant_id, safe='')}"
        )
        answer = await self._call("GET", path, None)
        if answer.status >= 400:
            refused = self._refused(answer, 0)
            if answer.code == "ORDER_NOT_EXIST":
                return replace(refused, not_found=True)
            return refused
        return self._payment(answer)

    async def close(self, out_trade_no: str) -> ChannelPayment:
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}/close"
        answer = await self._call("POST", path, {"mchid": self.config.merchant_id})
        if answer.code == "ORDERPAID":
            return await self.query(out_trade_no)
        if answer.status >= 400:
            return self._refused(answer, 0)
        return ChannelPayment(
            status="failed",
            amount_fen=0,
            failure_code="CLOSED",
            failure_reason="closed at the merchant's request",
            raw=answer.raw,
        )

    async def reverse(
        self, out_trade_no: str, *, started_at: datetime | None = None
    ) -> ChannelPayment:
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}/reverse"
        body = {"appid": self.config.app_id, "mchid": self.config.merchant_id}
        answer = await self._call("POST", path, body)
        if answer.status >= 400:
            if answer.code in NOT_FOUND:
                return self._refused(answer, 0)  # nothing there to be paid
            # Refused: the transaction is as it was, and the customer may still finish paying;
            # it stays pending, so it is asked about (and reversed) again, never taken as
            # closed while the money may yet be taken.
            return ChannelPayment(
                status="pending",
                amount_fen=0,
                failure_code=answer.code or str(answer.status),
                failure_reason=f"reverse refused: {answer.message}",
                raw=answer.raw,
            )
        return ChannelPayment(
            status="failed",
            amount_fen=0,
            failure_code="REVOKED",
            failure_reason="reversed at the merchant's request",
            raw=answer.raw,
        )

    # -- refunds ------------------------------------------------------------------------------

    async def refund(self, spec: RefundSpec) -> ChannelRefund:
        body: dict[str, Any] = {
            "out_refund_no": spec.out_refund_no,
            "amount": {"refund": spec.amount_fen, "total": spec.total_fen, "currency": "CNY"},
        }
        if spec.transaction_id:
            body["transaction_id"] = spec.transaction_id
        else:
            body["out_trade_no"] = spec.out_trade_no
        if spec.reason:
            body["reason"] = spec.reason[:80]
        notify_url = spec.notify_url or self.config.notify_url
        if notify_url:
            body["notify_url"] = notify_url
        answer = await self._call("POST", "/v3/refund/domestic/refunds", body)
        return self._refund(answer)

    async def query_refund(
        self, out_trade_no: str, out_refund_no: str, *, started_at: datetime | None = None
    ) -> ChannelRefund:
        path = f"/v3/refund/domestic/refunds/{quote(out_refund_no, safe='')}"
        answer = await self._call("GET", path, None)
        found = self._refund(answer)
        if answer.status == 404 and answer.code == "RESOURCE_NOT_EXISTS":
            return replace(found, not_found=True)
        return found

    # -- callbacks ----------------------------------------------------------------------------

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        try:
            self._verify(headers, body)
        except PlatformError as exc:
            raise NotificationRejected(str(exc), code=exc.code) from None
        try:
            document = json.loads(body)
            resource = document["resource"]
            if document.get("resource_type") != "encrypt-resource":
                raise NotificationRejected(
                    "resource_type is not encrypt-resource", code="malformed"
                )
            if resource.get("algorithm") != wx.AEAD:
                raise NotificationRejected(f"algorithm is not {wx.AEAD}", code="malformed")
            plain = wx.aead_decrypt(
                self.config.api_v3_key,
                str(resource["nonce"]),
                str(resource.get("associated_data") or ""),
                str(resource["ciphertext"]),
            )
            data = json.loads(plain)
            event = str(document["event_type"])
        except wx.ProtocolError as exc:
            raise NotificationRejected(str(exc), code="undecryptable") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise NotificationRejected(
                f"malformed callback: {type(exc).__name__} {exc}", code="malformed"
            ) from None
        if not isinstance(data, dict):
            raise NotificationRejected("resource is not an object", code="malformed")
        amount = data.get("amount") or {}
        occurred = data.get("success_time") or document.get("create_time")
        common: dict[str, Any] = {
            "merchant_id": str(data.get("mchid") or ""),
            "out_trade_no": str(data.get("out_trade_no") or ""),
            "transaction_id": data.get("transaction_id"),
            "occurred_at": _time(occurred),
            "notification_id": str(document.get("id") or "") or None,
            "raw": {"event_type": event, "summary": document.get("summary"), "resource": data},
        }
        if event.startswith("TRANSACTION."):
            state = str(data.get("trade_state") or "")
            return Notification(
                kind="payment",
                app_id=str(data.get("appid") or ""),
                status={"SUCCESS": "succeeded", "CLOSED": "closed", "PAYERROR": "failed"}.get(
                    state, "pending"
                ),
                amount_fen=int(amount.get("total") or 0),
                **common,
            )
        if event.startswith("REFUND."):
            state = str(data.get("refund_status") or "")
            return Notification(
                kind="refund",
                app_id="",
                status=REFUND_STATES.get(state, "pending"),
                amount_fen=int(amount.get("refund") or 0),
                out_refund_no=data.get("out_refund_no"),
                refund_id=data.get("refund_id"),
                failure_reason=(
                    f"{state}: {document.get('summary') or state}"
                    if REFUND_STATES.get(state) == "failed"
                    else None
                ),
                **common,
            )
        raise NotificationRejected(f"unknown event_type {event!r}", code="malformed")

    def answer_notification(self, ok: bool, message: str = "") -> NotificationAnswer:
        if ok:
            # 200 or 204 with no body; anything else and the platform calls again
            return NotificationAnswer(status_code=204, content_type="application/json", body=b"")
        # The platform takes any 4xx or 5xx as "not received" and calls again; every refusal
        # here is about the callback itself (its signature, merchant, order), so it is a 4xx:
        # a 5xx stays what it is everywhere else in selfmart, a fault of ours.
        body = json.dumps({"code": "FAIL", "message": message or "failed"}, ensure_ascii=False)
        return NotificationAnswer(
            status_code=400, content_type="application/json", body=body.encode()
        )

    # -- bills ----------------------------------------------------------------------------------

    async def download_bill(self, bill_date: date, kind: BillKind = "trade") -> bytes | None:
        out = io.BytesIO()
        return out.getvalue() if await self.download_bill_to(bill_date, out, kind) else None

    async def download_bill_to(
        self, bill_date: date, file: BinaryIO, kind: BillKind = "trade"
    ) -> bool:
        """The day's bill written (decompressed) to `file` as it arrives, its SHA1 checked on
        what was written, so that a million-line bill is never held whole; False: no bill."""
        if kind == "trade":
            path = (
                f"/v3/bill/tradebill?bill_date={bill_date.isoformat()}&bill_type=ALL&tar_type=GZIP"
            )
        else:
            path = (
                f"/v3/bill/fundflowbill?bill_date={bill_date.isoformat()}"
                "&account_type=BASIC&tar_type=GZIP"
            )
        answer = await self._call("GET", path, None)
        if answer.code == "NO_STATEMENT_EXIST":
            return False
        if answer.status >= 400:
            raise PlatformError(f"bill refused: {answer.code} {answer.message}", code=answer.code)
        url = str(answer.data.get("download_url") or "")
        if not url:
            raise PlatformError("bill answer without download_url", code="bad_answer")
        base = self.config.base_url.rstrip("/")
        if url.startswith(base):
            target = url[len(base) :]
        else:
            parts = urlsplit(url)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        if str(answer.data.get("hash_type") or "SHA1").upper() != "SHA1":
            raise PlatformError("bill answer with a hash_type other than SHA1", code="bad_answer")
        digest = await self._download(target, file)
        if digest != str(answer.data.get("hash_value") or "").lower():
            raise PlatformError("bill file does not match its hash_value", code="bad_answer")
        return True

    # -- the wire -----------------------------------------------------------------------------

    def _headers(self, method: str, target: str, body: bytes) -> dict[str, str]:
        headers = {
            "Authorization": wx.authorization(
                mchid=self.config.merchant_id,
                serial_no=self.config.private_key_id,
                key=self._key,
                method=method,
                url=target,
                body=body,
                # the project's clock (kit.time), which the answer's timestamp is checked against
                timestamp=str(int(utcnow().timestamp())),
                nonce=wx.nonce_str(),
            ),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if body:
            headers["Content-Type"] = "application/json"
        if self._public_key_id:
            headers["Wechatpay-Serial"] = self._public_key_id
        return headers

    # -- the phone page inside WeChat: web authorisation and JSAPI ---------------------------

    def _oauth_base(self, real_host: str) -> str:
        """WeChat's authorisation hosts are not the payment gateway's; a sandbox serves all
        three below its own base URL."""
        base = self.config.base_url.rstrip("/")
        return real_host if urlsplit(base).hostname == "api.mch.weixin.qq.com" else base

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """Where the page sends the customer to learn their openid (scope `snsapi_base`: no
        consent screen); WeChat comes back to `redirect_uri` with `code` and `state`."""
        query = urlencode(
            {
                "appid": self.config.app_id,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "scope": "snsapi_base",
                "state": state,
            }
        )
        base = self._oauth_base("https://open.weixin.qq.com")
        return f"{base}/connect/oauth2/authorize?{query}#wechat_redirect"

    async def openid_for(self, code: str) -> str:
        """Exchange the authorisation `code` for the customer's openid. A refused code (bad,
        expired, already used) is `PlatformError` with code `oauth_<errcode>`."""
        if not self.config.app_secret:
            raise PlatformError("no official account AppSecret configured", code="no_app_secret")
        url = self._oauth_base("https://api.weixin.qq.com") + "/sns/oauth2/access_token"
        params = {
            "appid": self.config.app_id,
            "secret": self.config.app_secret,
            "code": code,
            "grant_type": "authorization_code",
        }
        try:
            if self._http is not None:
                response = await self._http.get(url, params=params)
            else:
                async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
                    response = await client.get(url, params=params)
        except httpx.TimeoutException as exc:
            raise PlatformError(f"WeChat timed out: {exc!r}", code="timeout") from None
        except httpx.HTTPError as exc:
            raise PlatformError(f"WeChat unreachable: {exc!r}") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code != 200 or not isinstance(data, dict):
            raise PlatformError(f"WeChat answered {response.status_code}", code="platform_error")
        if data.get("errcode"):
            raise PlatformError(
                f"WeChat refused the code: {data.get('errmsg')}",
                code=f"oauth_{data['errcode']}",
            )
        openid = data.get("openid")
        if not isinstance(openid, str) or not openid:
            raise PlatformError("WeChat answered without an openid", code="bad_answer")
        return openid

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """`getBrandWCPayRequest`'s parameters for a JSAPI prepay, signed with our key."""
        return wx.jsapi_pay_params(self._key, self.config.app_id, prepay_id)

    async def _send(self, method: str, target: str, body: bytes) -> httpx.Response:
        url = self.config.base_url.rstrip("/") + target
        headers = self._headers(method, target, body)
        try:
            if self._http is not None:
                return await self._http.request(method, url, content=body, headers=headers)
            async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
                return await client.request(method, url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise PlatformError(f"WeChat Pay timed out: {exc!r}", code="timeout") from None
        except httpx.HTTPError as exc:
            raise PlatformError(f"WeChat Pay unreachable: {exc!r}") from None

    async def _call(self, method: str, target: str, payload: dict[str, Any] | None) -> _Answer:
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        response = await self._send(method, target, body)
        raw: dict[str, Any] = {
            "request": {"method": method, "url": target, "body": _masked(payload)},
            "response": {
                "status": response.status_code,
                "request_id": response.headers.get("Request-ID"),
            },
        }
        if response.status_code >= 500:
            raw["response"]["body"] = response.text[:2000]
            raise PlatformError(
                f"WeChat Pay answered {response.status_code}: {response.text[:200]}",
                code="platform_error",
            )
        self._verify(response.headers, response.content)
        data: dict[str, Any] = {}
        if response.content:
            try:
                parsed = response.json()
            except ValueError:
                raise PlatformError(
                    "WeChat Pay answered something not JSON", code="bad_answer"
                ) from None
            if not isinstance(parsed, dict):
                raise PlatformError("WeChat Pay answered a non-object", code="bad_answer")
            data = parsed
        raw["response"]["body"] = data
        return _Answer(response.status_code, data, raw)

    async def _download(self, target: str, file: BinaryIO) -> str:
        """The gzip file at `target` decompressed into `file` piece by piece as it arrives;
        the hex SHA1 of what was written (the bill's `hash_value` is of the bill as written)."""
        url = self.config.base_url.rstrip("/") + target
        headers = self._headers("GET", target, b"")
        unzip = zlib.decompressobj(wbits=31)  # gzip
        sha1 = hashlib.sha1()  # noqa: S324 - the platform's choice, not ours
        try:
            async with contextlib.AsyncExitStack() as stack:
                client = self._http
                if client is None:
                    client = await stack.enter_async_context(
                        httpx.AsyncClient(timeout=TIMEOUT_SECONDS)
                    )
                response = await stack.enter_async_context(
                    client.stream("GET", url, headers=headers)
                )
                if response.status_code != 200:
                    body = (await response.aread())[:200].decode(errors="replace")
                    raise PlatformError(
                        f"bill download answered {response.status_code}: {body}",
                        code="platform_error",
                    )
                async for piece in response.aiter_bytes():
                    try:
                        data = unzip.decompress(piece)
                    except zlib.error as exc:
                        raise PlatformError(
                            f"bill file is not gzip: {exc}", code="bad_answer"
                        ) from None
                    sha1.update(data)
                    file.write(data)
        except httpx.TimeoutException as exc:
            raise PlatformError(f"WeChat Pay timed out: {exc!r}", code="timeout") from None
        except httpx.HTTPError as exc:
            raise PlatformError(f"WeChat Pay unreachable: {exc!r}") from None
        if not unzip.eof:
            raise PlatformError("bill file is not gzip: it ends short", code="bad_answer")
        return sha1.hexdigest()

    def _verify(self, headers: Mapping[str, str], body: bytes) -> None:
        serial = wx.header(headers, "Wechatpay-Serial")
        signature = wx.header(headers, "Wechatpay-Signature")
        timestamp = wx.header(headers, "Wechatpay-Timestamp")
        nonce = wx.header(headers, "Wechatpay-Nonce")
        if not (serial and signature and timestamp and nonce):
            raise PlatformError("answer is not signed", code="bad_signature")
        key = self._platform_keys.get(serial)
        if key is None:
            raise PlatformError(f"unknown platform key {serial!r}", code="unknown_key")
        if not wx.timestamp_fresh(timestamp, utcnow()):
            raise PlatformError(f"stale timestamp {timestamp!r}", code="stale")
        if not wx.verify(key, wx.response_message(timestamp, nonce, body), signature):
            raise PlatformError("signature does not verify", code="bad_signature")

    # -- mapping ------------------------------------------------------------------------------

    def _payment(self, answer: _Answer) -> ChannelPayment:
        d = answer.data
        state = str(d.get("trade_state") or "")
        status = TRADE_STATES.get(state)
        if status is None:
            raise PlatformError(f"unknown trade_state {state!r}", code="bad_answer")
        amount = d.get("amount") or {}
        return ChannelPayment(
            status=status,
            amount_fen=int(amount.get("total") or 0),
            channel_txn_id=d.get("transaction_id"),
            paid_at=_time(d.get("success_time")) if status == "succeeded" else None,
            failure_code=state if status == "failed" else None,
            failure_reason=(
                str(d.get("trade_state_desc") or state) if status == "failed" else None
            ),
            raw=answer.raw,
        )

    @staticmethod
    def _refused(answer: _Answer, amount_fen: int) -> ChannelPayment:
        return ChannelPayment(
            status="failed",
            amount_fen=amount_fen,
            failure_code=answer.code or str(answer.status),
            failure_reason=answer.message,
            raw=answer.raw,
        )

    @staticmethod
    def _refund(answer: _Answer) -> ChannelRefund:
        if answer.status >= 400:
            return ChannelRefund(
                status="failed",
                failure_code=answer.code or str(answer.status),
                failure_reason=answer.message,
                raw=answer.raw,
            )
        d = answer.data
        state = str(d.get("status") or "")
        status = REFUND_STATES.get(state)
        if status is None:
            raise PlatformError(f"unknown refund status {state!r}", code="bad_answer")
        return ChannelRefund(
            status=status,
            channel_refund_id=d.get("refund_id"),
            completed_at=_time(d.get("success_time")) if status == "succeeded" else None,
            failure_code=state if status == "failed" else None,
            failure_reason=state if status == "failed" else None,
            raw=answer.raw,
        )


def _masked(payload: dict[str, Any] | None) -> dict[str, Any] | None:
    """The request as recorded: a customer's payment code is a one-time bearer secret."""
    payer = (payload or {}).get("payer")
    if not isinstance(payer, dict) or "auth_code" not in payer:
        return payload
    code = str(payer["auth_code"])
    return {**(payload or {}), "payer": {**payer, "auth_code": code[:4] + "*" * (len(code) - 4)}}


def _time(text: object) -> datetime | None:
    if not text:
        return None
    try:
        return wx.parse_rfc3339(str(text)).astimezone(UTC)
    except wx.ProtocolError:
        return None


register_platform("wechat", WechatPayAccount)
