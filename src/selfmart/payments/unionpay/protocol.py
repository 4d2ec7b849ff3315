"""UnionPay online gateway (ACP, 全渠道) 5.1.0 as pure functions: messages, the
`signMethod=01` signature, certificates and certIds, card-number encryption, and the
reconciliation file (fileType 00).

- A message is a set of `key=value` fields. Requests are POSTed form-encoded; the gateway's
  synchronous answer is `k=v&k=v` with the values NOT URL-encoded (a certificate's PEM, base64
  with `+/=`), so it is split at the first `=` of each pair and at `&` outside `{...}`.
- signature = base64(SHA256withRSA(hex(sha256(content)))) where content is every non-empty
  field but `signature`, sorted by name, as `k=v&k=v` in UTF-8; the hex digest is lower case.
- certId is the signing certificate's serial number in decimal. In 5.1.0 the gateway puts its
  signing certificate in `signPubKeyCert` of each answer and notification.
- Amounts (`txnAmt`) are integer fen; times (`txnTime`) are Beijing YYYYMMDDhhmmss.
"""

from __future__ import annotations

import base64
import codecs
import functools
import hashlib
import io
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

BEIJING = ZoneInfo("Asia/Shanghai")
VERSION = "5.1.0"
ENCODING = "UTF-8"
SIGN_METHOD = "01"
CURRENCY = "156"

# txnType
CONSUME = "01"
CONSUME_UNDO = "31"
REFUND = "04"
QUERY = "00"
FILE_TRANSFER = "76"

# bizType
BIZ_GATEWAY = "000201"  # B2C gateway payment: consume, undo, refund
BIZ_DEFAULT = "000000"  # query and file transfer

# respCode (the codes our account and sandbox use; the spec's appendix has the full list)
OK = "00"
FAILED = "01"
TIMED_OUT = "03"  # 交易通讯超时，请发起查询交易
UNKNOWN_STATE = "04"  # 交易状态未明，请查询对账结果
ACCEPTED = "05"  # 交易已受理，请稍后查询交易结果
FORMAT_ERROR = "10"
BAD_SIGNATURE = "11"
DUPLICATE = "12"
MISSING_FIELD = "13"
NOT_FOUND = "34"  # 查无此交易
ORIGINAL_BAD_STATE = "35"
ORIGINAL_MISMATCH = "36"
ISSUER_DECLINED = "60"
INSUFFICIENT_FUNDS = "51"
CARD_INVALID = "61"
FILE_NOT_FOUND = "98"

#: the results that are not final: query again later
PENDING_CODES = {TIMED_OUT, UNKNOWN_STATE, ACCEPTED}

MESSAGES = {
    OK: "成功[0000000]",
    FAILED: "交易失败",
    TIMED_OUT: "交易通讯超时，请发起查询交易",
    UNKNOWN_STATE: "交易状态未明，请查询对账结果",
    ACCEPTED: "交易已受理，请稍后查询交易结果",
    FORMAT_ERROR: "报文格式错误",
    BAD_SIGNATURE: "验证签名失败",
    DUPLICATE: "重复交易",
    MISSING_FIELD: "报文交易要素缺失",
    NOT_FOUND: "查无此交易",
    ORIGINAL_BAD_STATE: "原交易不存在或状态不正确",
    ORIGINAL_MISMATCH: "与原交易信息不符",
    ISSUER_DECLINED: "交易失败，详情请咨询您的发卡行",
    INSUFFICIENT_FUNDS: "余额不足",
    CARD_INVALID: "输入的卡号无效，请确认后输入",
    FILE_NOT_FOUND: "文件不存在",
}


class SignatureError(ValueError):
    """A signature or certificate is missing, malformed, unknown or does not verify."""


# --- messages ------------------------------------------------------------------------------


def sign_content(fields: Mapping[str, str]) -> str:
    return "&".join(
        f"{k}={fields[k]}" for k in sorted(fields) if k != "signature" and fields[k] != ""
    )


@functools.lru_cache(maxsize=32)
def _private_key(pem: str) -> rsa.RSAPrivateKey:
    """Parsed once per process: parsing (and checking) an RSA private key costs tens of
    milliseconds of CPU, more than the signature it is wanted for."""
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def sign(fields: Mapping[str, str], private_key_pem: str) -> dict[str, str]:
    """The message with `signature` set (signMethod 01)."""
    key = _private_key(private_key_pem)
    digest = hashlib.sha256(sign_content(fields).encode("utf-8")).hexdigest()
    signature = key.sign(digest.encode(), padding.PKCS1v15(), hashes.SHA256())
    out = dict(fields)
    out["signature"] = base64.b64encode(signature).decode()
    return out


def verify_with(fields: Mapping[str, str], certificate_pem: str) -> None:
    """Check `signature` with the given certificate's key."""
    signature = fields.get("signature", "")
    if not signature:
        raise SignatureError("signature is missing")
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        raise SignatureError("signature is not base64") from None
    key = load_certificate(certificate_pem).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError("the certificate's key is not RSA")
    digest = hashlib.sha256(sign_content(fields).encode("utf-8")).hexdigest()
    try:
        key.verify(raw, digest.encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureError("signature does not verify") from None


def verify_gateway(fields: Mapping[str, str], trusted: Mapping[str, str]) -> str:
    """Check a 5.1.0 answer or notification: its `signPubKeyCert` must be one of the gateway
    certificates we trust (by certId) and the signature must verify with it. Returns the
    certId used."""
    shown = fields.get("signPubKeyCert", "")
    if not shown:
        raise SignatureError("signPubKeyCert is missing")
    try:
        cert = load_certificate(shown)
    except ValueError:
        raise SignatureError("signPubKeyCert is not a certificate") from None
    cert_id = str(cert.serial_number)
    known = trusted.get(cert_id)
    if known is None or load_certificate(known).public_bytes(
        serialization.Encoding.DER
    ) != cert.public_bytes(serialization.Encoding.DER):
        raise SignatureError(f"gateway certificate {cert_id} is not trusted")
    verify_with(fields, shown)
    return cert_id


def encode_answer(fields: Mapping[str, str]) -> bytes:
    """The gateway's synchronous answer: `k=v&k=v`, values as they are."""
    return "&".join(f"{k}={fields[k]}" for k in sorted(fields)).encode("utf-8")


def decode_answer(body: bytes) -> dict[str, str]:
    """Split an answer: at `&` outside braces, each pair at its first `=`."""
    text = body.decode("utf-8").strip()
    out: dict[str, str] = {}
    depth = 0
    start = 0
    for i, ch in enumerate(text + "&"):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
        elif ch == "&" and depth == 0:
            pair = text[start:i]
            start = i + 1
            if not pair:
                continue
            key, eq, value = pair.partition("=")
            if not eq or not key:
                raise ValueError(f"not a key=value pair: {pair[:40]!r}")
            out[key] = value
    return out


# --- certificates and keys -----------------------------------------------------------------


def load_certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.strip().encode())


def cert_id(certificate_pem: str) -> str:
    return str(load_certificate(certificate_pem).serial_number)


def make_certificate(common_name: str, serial: int | None = None) -> tuple[str, str]:
    """A key and a self-signed certificate standing for one UnionPay-issued certificate:
    (PKCS#8 private key PEM, certificate PEM). The serial is the certId."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "China UnionPay (selfmart sandbox)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number() >> 96)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return private, cert.public_bytes(serialization.Encoding.PEM).decode()


def encrypt_sensitive(value: str, certificate_pem: str) -> str:
    """accNo and other sensitive fields: RSA (PKCS#1 v1.5) with the gateway's encryption
    certificate, base64; the message names the certificate in `encryptCertId`."""
    key = load_certificate(certificate_pem).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the encryption certificate's key is not RSA")
    return base64.b64encode(key.encrypt(value.encode(), padding.PKCS1v15())).decode()


def decrypt_sensitive(value: str, private_key_pem: str) -> str:
    key = _private_key(private_key_pem)
    return key.decrypt(base64.b64decode(value), padding.PKCS1v15()).decode()


def mask_card(number: str) -> str:
    """6216261000000000018 -> 621626*********0018, as the gateway shows card numbers."""
    if len(number) < 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


# --- values --------------------------------------------------------------------------------

_AMOUNT = re.compile(r"[1-9][0-9]{0,11}")
_ORDER_ID = re.compile(r"[0-9A-Za-z]{8,32}")


def parse_amount(text: str) -> int:
    """txnAmt: fen as digits, no sign, no leading zero, at least 1."""
    if not _AMOUNT.fullmatch(text):
        raise ValueError(f"not a txnAmt: {text!r}")
    return int(text)


def valid_order_id(text: str) -> bool:
    """orderId: 8 to 32 letters and digits (no '-' or '_')."""
    return bool(_ORDER_ID.fullmatch(text))


def format_txn_time(at: datetime) -> str:
    return at.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


def parse_txn_time(text: str) -> datetime:
    if not re.fullmatch(r"[0-9]{14}", text):
        raise ValueError(f"not a txnTime: {text!r}")
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING).astimezone(UTC)


# --- the reconciliation file (fileType 00) --------------------------------------------------

#: The ZM file (全渠道商户交易流水, "INN{yymmdd}88ZM_{merId}") is fixed-width GBK: each record's
#: fields at these widths in bytes, one space between fields, CRLF between records, as the
#: file interface specification's table for the ZM file gives them.
ZM_FIELDS: tuple[tuple[str, int], ...] = (
    ("tradeCode", 3),
    ("acqInsCode", 11),
    ("sendInsCode", 11),
    ("traceNo", 6),
    ("txnTime", 10),  # MMDDhhmmss
    ("accNo", 19),
    ("txnAmt", 12),
    ("merCatCode", 4),
    ("termType", 2),
    ("queryId", 21),
    ("payTypeOld", 2),
    ("orderId", 32),
    ("payCardType", 2),
    ("origTraceNo", 6),
    ("origTxnTime", 10),
    ("merFee", 13),
    ("settleAmt", 13),
    ("payType", 4),
    ("groupMerId", 15),
    ("txnType", 2),
    ("txnSubType", 2),
    ("bizType", 6),
    ("accType", 2),
    ("billType", 4),
    ("billNo", 32),
    ("interactMode", 1),
    ("origQryId", 21),
    ("merId", 15),
    ("divideType", 1),
    ("subMerId", 15),
    ("subMerAbbr", 32),
    ("subMerDivideAmt", 13),
    ("netSettleAmt", 13),
    ("termId", 8),
    ("merReserved", 32),
    ("discountAmt", 13),
    ("invoiceAmt", 13),
    ("installmentFee", 12),
    ("installmentNum", 2),
    ("tradeMedia", 1),
    ("origOrderId", 32),
    ("reserved", 98),
)
#: tradeCode: the file's transaction codes for what our card channel does (消费, 消费撤销, 退货).
#: Our choice: no published copy of the specification's code table was found (docs/payments.md
#: says where we looked); only the sandbox writes them, `parse_zm` reads `txnType` instead.
TRADE_CODES = {CONSUME: "S22", CONSUME_UNDO: "S31", REFUND: "S30"}


@dataclass(frozen=True, slots=True)
class ZmRecord:
    txn_type: str
    query_id: str
    order_id: str
    txn_time: str  # MMDDhhmmss, Beijing
    amount_fen: int
    #: the merchant's fee on this line (negative: charged)
    fee_fen: int
    #: what is settled to the merchant for this line (negative for undo / refund)
    settle_fen: int
    card: str
    trace_no: str
    mer_id: str
    orig_query_id: str = ""
    orig_order_id: str = ""


def _signed_amount(fen: int) -> str:
    """13 characters: C (credit to the merchant) or D (debit) and 12 digits of fen."""
    return ("C" if fen >= 0 else "D") + f"{abs(fen):012d}"


def _read_signed(text: str) -> int:
    text = text.strip()
    if not text:
        return 0
    if text[0] not in "CD" or not text[1:].isdigit():
        raise ValueError(f"not a signed amount: {text!r}")
    value = int(text[1:])
    return value if text[0] == "C" else -value


def _fixed(value: str, width: int) -> bytes:
    data = value.encode("gbk")
    if len(data) > width:
        raise ValueError(f"{value!r} is longer than {width} bytes")
    return data + b" " * (width - len(data))


def encode_zm(records: list[ZmRecord]) -> bytes:
    lines = []
    for r in records:
        values = {
            "tradeCode": TRADE_CODES[r.txn_type],
            "acqInsCode": "00049992900",
            "sendInsCode": "00049992900",
            "traceNo": r.trace_no,
            "txnTime": r.txn_time,
            "accNo": r.card,
            "txnAmt": f"{r.amount_fen:012d}",
            "merCatCode": "5499",
            "termType": "07",
            "queryId": r.query_id,
            "orderId": r.order_id,
            "payCardType": "01",
            "merFee": _signed_amount(r.fee_fen),
            "settleAmt": _signed_amount(r.settle_fen),
            "payType": "0001",
            "txnType": r.txn_type,
            "txnSubType": "01" if r.txn_type == CONSUME else "00",
            "bizType": BIZ_GATEWAY,
            "accType": "01",
            "origQryId": r.orig_query_id,
            "merId": r.mer_id,
            "netSettleAmt": _signed_amount(r.settle_fen + r.fee_fen),
            "origOrderId": r.orig_order_id,
        }
        lines.append(b" ".join(_fixed(values.get(name, ""), width) for name, width in ZM_FIELDS))
    return b"".join(line + b"\r\n" for line in lines)


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def parse_zm(data: bytes) -> list[ZmRecord]:
    """Read a ZM file back (fields cut by byte widths, GBK). A file in another encoding is
    refused saying so: by its byte order mark, or by the first line and field not GBK."""
    for bom, encoding in ((codecs.BOM_UTF8, "UTF-8"), (codecs.BOM_UTF16_LE, "UTF-16"),
                          (codecs.BOM_UTF16_BE, "UTF-16")):  # fmt: skip
        if data.startswith(bom):
            raise ValueError(
                f"the ZM file is {encoding} (it starts with a byte order mark), not GBK"
            )
    records = []
    widths = [w for _n, w in ZM_FIELDS]
    expected = sum(widths) + len(widths) - 1
    for number, line in enumerate(data.split(b"\r\n"), start=1):
        if not line.strip():
            continue
        if len(line) != expected:
            if not line.isascii() and _is_utf8(line):  # no byte order mark to say so
                raise ValueError(
                    f"ZM line {number} is UTF-8 text, not GBK "
                    "(its Chinese takes 3 bytes a character)"
                )
            raise ValueError(f"ZM line {number} is {len(line)} bytes, not {expected}")
        values: dict[str, str] = {}
        pos = 0
        for name, width in ZM_FIELDS:
            try:
                values[name] = line[pos : pos + width].decode("gbk").strip()
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"ZM line {number}: {name} is not GBK text: "
                    f"byte 0x{line[pos + exc.start]:02x} at column {pos + exc.start + 1}"
                ) from None
            pos += width + 1
        records.append(
            ZmRecord(
                txn_type=values["txnType"],
                query_id=values["queryId"],
                order_id=values["orderId"],
                txn_time=values["txnTime"],
                amount_fen=int(values["txnAmt"]),
                fee_fen=_read_signed(values["merFee"]),
                settle_fen=_read_signed(values["settleAmt"]),
                card=values["accNo"],
                trace_no=values["traceNo"],
                mer_id=values["merId"],
                orig_query_id=values["origQryId"],
                orig_order_id=values["origOrderId"],
            )
        )
    return records


def file_names(mer_id: str, settle_day: date) -> tuple[str, str]:
    """(the zip's fileName, the ZM file inside it): `{merId}_{yyyyMMdd}.zip` holding
    `INN{yymmdd}88ZM_{merId}`, as the sample file UnionPay ships with its ACP SDK demos
    (`802310048993424_20150905.zip`, `INN15090588ZM_802310048993424`) is named."""
    return (
        f"{mer_id}_{settle_day:%Y%m%d}.zip",
        f"INN{settle_day:%y%m%d}88ZM_{mer_id}",
    )


def encode_file_content(archive: bytes) -> str:
    """fileContent: the zip deflated (zlib) then base64, as the gateway sends it."""
    return base64.b64encode(zlib.compress(archive)).decode()


def decode_file_content(content: str) -> bytes:
    return zlib.decompress(base64.b64decode(content))


def build_archive(mer_id: str, settle_day: date, records: list[ZmRecord]) -> tuple[str, bytes]:
    zip_name, zm_name = file_names(mer_id, settle_day)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zm_name, encode_zm(records))
    return zip_name, buffer.getvalue()


def read_archive(archive: bytes) -> dict[str, list[ZmRecord]]:
    """Every ZM file in a reconciliation zip, parsed, by name."""
    try:
        z = zipfile.ZipFile(io.BytesIO(archive))
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not a zip: {exc}") from None
    out = {}
    for name in z.namelist():
        if re.fullmatch(r"INN[0-9]{6}[0-9]{2}ZM_[0-9A-Za-z]+", name.rsplit("/", 1)[-1]):
            out[name] = parse_zm(z.read(name))
    if not out:
        raise ValueError("the zip holds no ZM file")
    return out
