"""WeChat Pay API v3 wire protocol as pure functions over bytes: request and response
signatures (WECHATPAY2-SHA256-RSA2048), the AEAD_AES_256_GCM resource encryption of callbacks
and certificates, and the trade / fund-flow bill files. Our account and our sandbox both use it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEMA = "WECHATPAY2-SHA256-RSA2048"
AEAD = "AEAD_AES_256_GCM"
#: responses and callbacks whose timestamp is further than this from now are not believed
MAX_SKEW = timedelta(minutes=5)
#: the platform answers and bills in Beijing time
CST = timezone(timedelta(hours=8), "Asia/Shanghai")
PUBLIC_KEY_ID_PREFIX = "PUB_KEY_ID_"

_AUTH_FIELD = re.compile(r'(\w+)="([^"]*)"')


class ProtocolError(ValueError):
    """Input that does not follow the protocol (unparseable header, key, ciphertext...)."""


# -- keys -------------------------------------------------------------------------------------


def load_private_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"not a PEM private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ProtocolError("not an RSA private key")
    return key


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    """A platform verification key: a PUBLIC KEY PEM (public-key mode) or the platform
    CERTIFICATE PEM (certificate mode)."""
    data = pem.encode() if isinstance(pem, str) else pem
    key: object
    try:
        if b"BEGIN CERTIFICATE" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"not a PEM public key or certificate: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ProtocolError("not an RSA public key")
    return key


def certificate_serial(pem: str | bytes) -> str:
    """The certificate's serial number as WeChat writes it: upper-case hex."""
    data = pem.encode() if isinstance(pem, str) else pem
    return format(x509.load_pem_x509_certificate(data).serial_number, "X")


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_key_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


# -- signatures -------------------------------------------------------------------------------


def nonce_str() -> str:
    return secrets.token_hex(16).upper()


def request_message(method: str, url: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What a merchant signs: `METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n`, the URL being the path
    and query string below the gateway (`/v3/pay/transactions/out-trade-no/X?mchid=1`)."""
    head = f"{method.upper()}\n{url}\n{timestamp}\n{nonce}\n".encode()
    return head + body + b"\n"


def response_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What the platform signs in a response or callback: `TIMESTAMP\\nNONCE\\nBODY\\n`."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        return False
    try:
        key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def jsapi_pay_message(app_id: str, timestamp: str, nonce: str, package: str) -> bytes:
    """What `paySign` signs for `getBrandWCPayRequest`: `appId\ntimeStamp\nnonceStr\npackage\n`."""
    return f"{app_id}\n{timestamp}\n{nonce}\n{package}\n".encode()


def jsapi_pay_params(
    key: rsa.RSAPrivateKey,
    app_id: str,
    prepay_id: str,
    *,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The parameters of `WeixinJSBridge.invoke('getBrandWCPayRequest', …)` for a JSAPI
    prepay: `paySign` is SHA256withRSA with the merchant key, base64."""
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or nonce_str()
    package = f"prepay_id={prepay_id}"
    return {
        "appId": app_id,
        "timeStamp": timestamp,
        "nonceStr": nonce,
        "package": package,
        "signType": "RSA",
        "paySign": sign(key, jsapi_pay_message(app_id, timestamp, nonce, package)),
    }


def authorization(
    *,
    mchid: str,
    serial_no: str,
    key: rsa.RSAPrivateKey,
    method: str,
    url: str,
    body: bytes,
    timestamp: str,
    nonce: str,
) -> str:
    """The `Authorization` header of a merchant's request."""
    signature = sign(key, request_message(method, url, timestamp, nonce, body))
    return (
        f'{SCHEMA} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{serial_no}"'
    )


@dataclass(frozen=True, slots=True)
class Authorization:
    mchid: str
    nonce_str: str
    signature: str
    timestamp: str
    serial_no: str


def parse_authorization(header: str) -> Authorization:
    schema, _, rest = header.strip().partition(" ")
    if schema != SCHEMA:
        raise ProtocolError(f"Authorization schema must be {SCHEMA}")
    fields = dict(_AUTH_FIELD.findall(rest))
    missing = [
        k
        for k in ("mchid", "nonce_str", "signature", "timestamp", "serial_no")
        if not fields.get(k)
    ]
    if missing:
        raise ProtocolError(f"Authorization lacks {', '.join(missing)}")
    return Authorization(
        mchid=fields["mchid"],
        nonce_str=fields["nonce_str"],
        signature=fields["signature"],
        timestamp=fields["timestamp"],
        serial_no=fields["serial_no"],
    )


def timestamp_fresh(timestamp: str, now: datetime, skew: timedelta = MAX_SKEW) -> bool:
    try:
        at = datetime.fromtimestamp(int(timestamp), tz=now.tzinfo)
    except (ValueError, OverflowError, OSError):
        return False
    return abs(now - at) <= skew


def response_headers(
    key: rsa.RSAPrivateKey, serial: str, body: bytes, *, timestamp: str, nonce: str
) -> dict[str, str]:
    """The platform's signature headers for a response or a callback."""
    return {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": sign(key, response_message(timestamp, nonce, body)),
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": SCHEMA,
    }


def header(headers: Mapping[str, str], name: str) -> str:
    """A header by name, whatever case the transport gave it."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), "")
    return value


# -- AEAD_AES_256_GCM -------------------------------------------------------------------------


def aead_encrypt(api_v3_key: str, nonce: str, associated_data: str, plaintext: bytes) -> str:
    """The `ciphertext` of a callback `resource` or an `encrypt_certificate`: base64 of the
    AES-256-GCM ciphertext with its 16-byte tag, keyed by the 32-byte APIv3 key."""
    sealed = AESGCM(_aead_key(api_v3_key)).encrypt(
        nonce.encode(), plaintext, associated_data.encode()
    )
    return base64.b64encode(sealed).decode()


def aead_decrypt(api_v3_key: str, nonce: str, associated_data: str, ciphertext: str) -> bytes:
    try:
        sealed = base64.b64decode(ciphertext, validate=True)
        return AESGCM(_aead_key(api_v3_key)).decrypt(
            nonce.encode(), sealed, associated_data.encode()
        )
    except (InvalidTag, ValueError) as exc:
        raise ProtocolError(f"resource does not decrypt: {type(exc).__name__}") from None


def _aead_key(api_v3_key: str) -> bytes:
    key = api_v3_key.encode()
    if len(key) != 32:
        raise ProtocolError("the APIv3 key must be 32 bytes")
    return key


# -- bills ------------------------------------------------------------------------------------

TRADE_BILL_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
    "费率备注"
).split(",")
TRADE_BILL_TOTALS_HEADER = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
).split(",")
#: The trade bill (ALL) as the v2 `downloadbill` API documented it before the current layout:
#: 24 columns, 总金额 where the current one has 应结订单金额 and no 订单金额 column, and five
#: totals. WeChat Pay's own trade-bill notes (docs/merchant/products/bill-download/
#: format-trade.html) say a few merchants still get this early layout.
TRADE_BILL_HEADER_V2 = (
    "交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,总金额,代金券或立减优惠金额,微信退款单号,商户退款单号,退款金额,"
    "代金券或立减优惠退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率"
).split(",")
TRADE_BILL_TOTALS_HEADER_V2 = (
    "总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额"
).split(",")
FUNDFLOW_BILL_HEADER = (
    "记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额（元）,"
    "账户结余（元）,资金变更提交申请人,备注,业务凭证号"
).split(",")
FUNDFLOW_BILL_TOTALS_HEADER = "资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额".split(",")


@dataclass(frozen=True, slots=True)
class Bill:
    header: list[str]
    rows: list[list[str]]
    totals_header: list[str]
    totals: list[str]

    def records(self) -> list[dict[str, str]]:
        return [dict(zip(self.header, row, strict=True)) for row in self.rows]

    def summary(self) -> dict[str, str]:
        return dict(zip(self.totals_header, self.totals, strict=True))


def yuan(fen: int) -> str:
    """Fen as the bills write money: yuan with two decimals."""
    sign_ = "-" if fen < 0 else ""
    return f"{sign_}{abs(fen) // 100}.{abs(fen) % 100:02d}"


_YUAN = re.compile(r"(-?)([0-9]+)(?:\.([0-9]{1,2}))?")


def fen(yuan_text: str) -> int:
    """The inverse of `yuan`. Refuses (`ProtocolError`) what is not yuan with at most two
    decimals: `1.234` is not rounded to 123 fen, it is not an amount the platform writes."""
    m = _YUAN.fullmatch(yuan_text.strip())
    if m is None:
        raise ProtocolError(f"not a yuan amount with at most two decimals: {yuan_text[:40]!r}")
    value = int(m[2]) * 100 + int((m[3] or "0").ljust(2, "0"))
    return -value if m[1] else value


def format_bill(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    totals_header: Sequence[str],
    totals: Sequence[str],
) -> bytes:
    """A bill file: the column header, one line per record with every value prefixed by a
    backtick (so spreadsheets keep long numbers as text), the totals header and the totals."""

    def values(row: Sequence[str]) -> str:
        return ",".join("`" + v.replace(",", " ") for v in row)

    lines = [",".join(header), *(values(r) for r in rows), ",".join(totals_header), values(totals)]
    return ("\r\n".join(lines) + "\r\n").encode()


def parse_bill(data: bytes) -> Bill:
    """Read a bill file back (the inverse of `format_bill`)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # WeChat Pay writes its bills in UTF-8; one re-saved as GBK or UTF-16 is refused
        # saying so, naming the line of the first byte that is not UTF-8.
        at = data[: exc.start].count(b"\n") + 1
        utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
        raise ProtocolError(
            f"line {at}: the bill is not UTF-8 text{' (it is UTF-16)' if utf16 else ''}: "
            f"byte 0x{data[exc.start]:02x}"
        ) from None
    # (line number in the file, line): errors name the line, as a person would look for it
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    lines = [line for _, line in numbered]
    if len(lines) < 3:
        raise ProtocolError("a bill has a header, a totals header and a totals line")

    def values(number: int, line: str) -> list[str]:
        cells = line.split(",")
        if not all(c.startswith("`") for c in cells):
            raise ProtocolError(
                f"line {number}: bill values must start with a backtick: {line[:60]!r}"
            )
        return [c[1:] for c in cells]

    header = lines[0].split(",")
    totals_header = lines[-2].split(",")
    rows = []
    for number, line in numbered[1:-2]:
        row = values(number, line)
        if len(row) != len(header):
            raise ProtocolError(f"line {number}: a bill row does not have one value per column")
        rows.append(row)
    totals = values(*numbered[-1])
    if len(totals) != len(totals_header):
        raise ProtocolError(
            f"line {numbered[-1][0]}: the totals line does not have one value per column"
        )
    return Bill(header=header, rows=rows, totals_header=totals_header, totals=totals)


def bill_hash(data: bytes) -> str:
    """`hash_value` for `hash_type` SHA1: of the bill as written, before any compression."""
    return hashlib.sha1(data).hexdigest()  # noqa: S324 - the platform's choice, not ours


def rfc3339(at: datetime) -> str:
    """Times as the platform writes them: `2026-12-06T10:34:56+08:00`."""
    return at.astimezone(CST).isoformat(timespec="seconds")


def parse_rfc3339(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ProtocolError(f"not an RFC 3339 time: {text!r}") from None
    if at.tzinfo is None:
        raise ProtocolError(f"time without a zone: {text!r}")
    return at
