"""Alipay open platform wire protocol as pure functions: amounts, RSA2 signing, the signed
JSON answer, asynchronous notifications and the day's bill zip.

Used by our `AlipayAccount` and by our sandbox of the gateway alike. Nothing here does I/O.

- A request is signed over its parameters sorted by name, empty ones and `sign` left out,
  joined as `k=v&k=v` (values not URL-encoded); `sign_type` is part of what is signed.
- An answer is `{"<method_with_underscores>_response": {...}, "sign": "..."}` and the
  signature covers the exact characters of the `..._response` value as sent, so it is cut out
  of the body rather than re-serialised.
- A notification is signed like a request except that `sign_type` is left out too.
- Amounts travel as yuan strings ("12.34"); we hold integer fen.
"""

from __future__ import annotations

import base64
import codecs
import csv
import dataclasses
import functools
import io
import json
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SignType = Literal["RSA2", "RSA"]
BEIJING = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# Gateway answer codes (the `code` of every answer).
SUCCESS = "10000"
USER_PAYING = "10003"  # WAIT_BUYER_PAY: the buyer is confirming on the phone
UNKNOWN = "20000"  # service unavailable: the outcome is unknown, query later
AUTH_FAILED = "20001"
MISSING_ARGUMENT = "40001"
INVALID_ARGUMENT = "40002"
BUSINESS_FAILED = "40004"
NO_PERMISSION = "40006"

MESSAGES = {
    SUCCESS: "Success",
    USER_PAYING: "order success pay inprocess",
    UNKNOWN: "Service Currently Unavailable",
    AUTH_FAILED: "Insufficient Token Permissions",
    MISSING_ARGUMENT: "Missing Required Arguments",
    INVALID_ARGUMENT: "Invalid Arguments",
    BUSINESS_FAILED: "Business Failed",
    NO_PERMISSION: "Insufficient Permissions",
}


class SignatureError(ValueError):
    """A signature is missing, malformed or does not verify."""


# --- amounts -------------------------------------------------------------------------------

_YUAN = re.compile(r"-?[0-9]{1,11}(\.[0-9]{1,2})?")


def yuan_to_fen(value: str, *, signed: bool = False) -> int:
    """'12.34' -> 1234 exactly. Refuses more than two decimals, exponents, blanks, signs
    (a minus only with `signed`, as bill files show refunds) and anything not a plain number."""
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not _YUAN.fullmatch(text):
        raise ValueError(f"not a yuan amount with at most two decimals: {value!r}")
    if text.startswith("-") and not signed:
        raise ValueError(f"negative amount: {value!r}")
    try:
        fen = Decimal(text) * 100
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise ValueError(f"not a number: {value!r}") from None
    return int(fen)


def fen_to_yuan(fen: int) -> str:
    """1234 -> '12.34'; -5 -> '-0.05'. Integers only (a bool or a float is a bug)."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"fen must be an int, not {type(fen).__name__}")
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


# --- keys and RSA ------------------------------------------------------------------------


def _pem(text: str, kind: str) -> bytes:
    """Accept a PEM, or the bare base64 body Alipay's key tool hands out."""
    stripped = text.strip()
    if stripped.startswith("-----"):
        return stripped.encode()
    body = "".join(stripped.split())
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----\n".encode()


@functools.lru_cache(maxsize=32)
def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """The key parsed once per process: parsing (and checking) an RSA private key costs tens
    of milliseconds of CPU, more than the signature it is wanted for."""
    try:
        key = serialization.load_pem_private_key(_pem(text, "PRIVATE KEY"), password=None)
    except ValueError:
        # a bare PKCS#1 body
        key = serialization.load_pem_private_key(_pem(text, "RSA PRIVATE KEY"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


@functools.lru_cache(maxsize=32)
def load_public_key(text: str) -> rsa.RSAPublicKey:
    data = _pem(text, "PUBLIC KEY")
    if b"CERTIFICATE" in data:
        from cryptography import x509

        key: object = x509.load_pem_x509_certificate(data).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def generate_key_pair() -> tuple[str, str]:
    """A new 2048-bit key pair as (PKCS#1 private PEM, SubjectPublicKeyInfo public PEM): the
    forms Alipay's key tool gives for non-Java use, which every Python client loads (Alipay's
    own SDK only takes PKCS#1)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def _hash(sign_type: str) -> hashes.HashAlgorithm:
    if sign_type == "RSA2":
        return hashes.SHA256()
    if sign_type == "RSA":
        return hashes.SHA1()  # noqa: S303 - Alipay's legacy sign type, verified only on request
    raise SignatureError(f"unsupported sign_type {sign_type!r}")


def rsa_sign(content: str, private_key_pem: str, sign_type: str = "RSA2") -> str:
    """base64(SHA256withRSA(content as UTF-8)) for RSA2 (SHA1withRSA for RSA)."""
    key = load_private_key(private_key_pem)
    signature = key.sign(content.encode("utf-8"), padding.PKCS1v15(), _hash(sign_type))
    return base64.b64encode(signature).decode()


def rsa_verify(content: str, signature: str, public_key_pem: str, sign_type: str = "RSA2") -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        return False
    try:
        load_public_key(public_key_pem).verify(
            raw, content.encode("utf-8"), padding.PKCS1v15(), _hash(sign_type)
        )
    except InvalidSignature:
        return False
    return True


# --- requests and notifications ----------------------------------------------------------


def sign_content(params: Mapping[str, str], exclude: Iterable[str] = ("sign",)) -> str:
    """The string that is signed: non-empty parameters other than `exclude`, sorted by name,
    joined as k=v&k=v with the values as they are (not URL-encoded)."""
    skip = set(exclude)
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in skip and params[k] != "")


def sign_params(params: Mapping[str, str], private_key_pem: str) -> dict[str, str]:
    """The request's parameters with `sign` added (its `sign_type` is signed with it)."""
    sign_type = params.get("sign_type", "RSA2")
    out = dict(params)
    out["sign"] = rsa_sign(sign_content(params), private_key_pem, sign_type)
    return out


def verify_params(params: Mapping[str, str], public_key_pem: str) -> None:
    """Check a request's signature (sign_type included in what is signed)."""
    _verify_form(params, public_key_pem, ("sign",))


def sign_notification(params: Mapping[str, str], private_key_pem: str) -> dict[str, str]:
    out = dict(params)
    out.setdefault("sign_type", "RSA2")
    content = sign_content(out, ("sign", "sign_type"))
    out["sign"] = rsa_sign(content, private_key_pem, out["sign_type"])
    return out


def verify_notification(params: Mapping[str, str], public_key_pem: str) -> None:
    """Check a notification's signature: `sign` and `sign_type` are both left out of it."""
    _verify_form(params, public_key_pem, ("sign", "sign_type"))


def _verify_form(params: Mapping[str, str], public_key_pem: str, exclude: tuple[str, ...]) -> None:
    signature = params.get("sign")
    if not signature:
        raise SignatureError("sign is missing")
    sign_type = params.get("sign_type") or "RSA2"
    if not rsa_verify(sign_content(params, exclude), signature, public_key_pem, sign_type):
        raise SignatureError("sign does not verify")


def response_key(method: str) -> str:
    """alipay.trade.pay -> alipay_trade_pay_response."""
    return method.replace(".", "_") + "_response"


# --- answers -----------------------------------------------------------------------------


def encode_response(
    method: str, payload: Mapping[str, Any], private_key_pem: str | None, sign_type: str = "RSA2"
) -> bytes:
    """The gateway's answer body: the `..._response` object, signed over its exact text (no
    signature when `private_key_pem` is None, as for a request the gateway cannot trust)."""
    content = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    body = '{"' + response_key(method) + '":' + content
    if private_key_pem is not None:
        body += ',"sign":' + json.dumps(rsa_sign(content, private_key_pem, sign_type))
    return (body + "}").encode("utf-8")


def encode_error_response(payload: Mapping[str, Any]) -> bytes:
    """For a request the gateway cannot place (unknown method): `error_response`, unsigned."""
    content = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return ('{"error_response":' + content + "}").encode("utf-8")


def top_level_spans(text: str) -> dict[str, tuple[int, int]]:
    """Each top-level key of a JSON object mapped to the exact span of its value's text."""
    decoder = json.JSONDecoder()
    spans: dict[str, tuple[int, int]] = {}
    ws = re.compile(r"\s*")

    def skip(pos: int) -> int:
        match = ws.match(text, pos)
        return match.end() if match else pos

    pos = skip(0)
    if text[pos : pos + 1] != "{":
        raise ValueError("not a JSON object")
    pos = skip(pos + 1)
    if text[pos : pos + 1] == "}":
        return spans
    while True:
        key, pos = decoder.raw_decode(text, pos)
        if not isinstance(key, str):
            raise ValueError("object key is not a string")
        pos = skip(pos)
        if text[pos : pos + 1] != ":":
            raise ValueError("expected ':'")
        start = skip(pos + 1)
        _value, end = decoder.raw_decode(text, start)
        spans[key] = (start, end)
        pos = skip(end)
        if text[pos : pos + 1] == ",":
            pos = skip(pos + 1)
            continue
        if text[pos : pos + 1] == "}":
            return spans
        raise ValueError("expected ',' or '}'")


@dataclass(frozen=True, slots=True)
class GatewayAnswer:
    """A decoded answer: `payload` is the `..._response` (or `error_response`) object."""

    payload: dict[str, Any]
    signed: bool
    #: the exact text the signature covers
    content: str

    @property
    def code(self) -> str:
        return str(self.payload.get("code", ""))

    @property
    def sub_code(self) -> str:
        return str(self.payload.get("sub_code", ""))


def decode_response(method: str, body: bytes, public_key_pem: str) -> GatewayAnswer:
    """Decode and verify an answer. A signed answer must verify (else `SignatureError`); an
    unsigned one (the gateway refusing the request itself, e.g. a bad app id or signature)
    comes back with `signed=False` and must not be trusted beyond its error code."""
    try:
        text = body.decode("utf-8")
        spans = top_level_spans(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"the answer is not a JSON object: {exc}") from None
    key = response_key(method)
    if key not in spans:
        key = "error_response"
        if key not in spans:
            raise ValueError(f"the answer has no {response_key(method)}")
    start, end = spans[key]
    content = text[start:end]
    payload = json.loads(content)
    if not isinstance(payload, dict):
        raise ValueError(f"{key} is not an object")
    if "sign" not in spans:
        return GatewayAnswer(payload, signed=False, content=content)
    s_start, s_end = spans["sign"]
    signature = json.loads(text[s_start:s_end])
    if not isinstance(signature, str) or not rsa_verify(content, signature, public_key_pem):
        raise SignatureError(f"the signature over {key} does not verify")
    return GatewayAnswer(payload, signed=True, content=content)


# --- times -------------------------------------------------------------------------------


def format_time(at: datetime) -> str:
    """Alipay's 'yyyy-MM-dd HH:mm:ss' in Beijing time."""
    return at.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """Alipay's Beijing 'yyyy-MM-dd HH:mm:ss' as an aware UTC datetime."""
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING).astimezone(UTC)


# --- bills -------------------------------------------------------------------------------

DETAIL_HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,"
    "终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,"
    "支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,"
    "卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
)
SUMMARY_HEADER = (
    "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,"
    "支付宝优惠（元）,商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）"
)
_RULE = "-" * 41
TRADE = "交易"
REFUND = "退款"


@dataclass(frozen=True, slots=True)
class BillRow:
    """One line of the day's 业务明细 (a payment, or a refund with negative amounts)."""

    trade_no: str
    out_trade_no: str
    kind: str  # 交易 | 退款
    subject: str
    created_at: datetime
    finished_at: datetime
    amount_fen: int
    received_fen: int
    fee_fen: int = 0
    store_id: str = ""
    store_name: str = ""
    buyer_account: str = ""
    #: the refund's out_request_no (refund rows)
    refund_no: str = ""
    remark: str = ""
    #: where it stands in the 业务明细 file, counting every line (preamble and header too), as
    #: the refusals of a bad line count (0 for a row not read from a file)
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class BillSummary:
    trade_count: int
    refund_count: int
    amount_fen: int
    received_fen: int
    fee_fen: int
    net_fen: int


@dataclass(frozen=True, slots=True)
class Bill:
    account: str
    day: date
    rows: list[BillRow] = field(default_factory=list)
    summary: BillSummary | None = None
    #: the detail file's own closing line `#交易合计：N笔，退款合计：M笔` (trades, refunds)
    detail_counts: tuple[int, int] | None = None


def bill_file_names(account: str, day: date) -> tuple[str, str, str]:
    """(zip name, detail csv name, summary csv name) as Alipay names them."""
    stamp = day.strftime("%Y%m%d")
    return (
        f"{account}_{stamp}.csv.zip",
        f"{account}_{stamp}_业务明细.csv",
        f"{account}_{stamp}_业务明细(汇总).csv",
    )


def _cn_day(day: date) -> str:
    return f"{day:%Y}年{day:%m}月{day:%d}日 00:00:00"


def _cell(value: str) -> str:
    """Ids and names carry a trailing tab, which keeps spreadsheets from turning long ids into
    numbers (times and most amounts do not, as in Alipay's files); readers strip it."""
    return value + "\t"


def _csv_line(cells: Iterable[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(list(cells))
    return out.getvalue()


def encode_bill(account: str, day: date, rows: list[BillRow], exported_at: datetime) -> bytes:
    """The zip Alipay's bill_download_url serves: two GBK CSVs with `#` preamble lines."""
    begin, end = _cn_day(day), _cn_day(day + timedelta(days=1))
    exported = exported_at.astimezone(BEIJING).strftime("%Y年%m月%d日 %H:%M:%S")
    head = f"#账号：[{account}]\r\n#起始日期：[{begin}]   终止日期：[{end}]\r\n"
    detail = ["#支付宝业务明细查询\r\n", head, f"#{_RULE}业务明细列表{_RULE}\r\n"]
    detail.append(DETAIL_HEADER + "\r\n")
    t = _cell
    for r in rows:
        detail.append(
            _csv_line(
                (
                    t(r.trade_no),
                    t(r.out_trade_no),
                    t(r.kind),
                    r.subject,
                    format_time(r.created_at),
                    format_time(r.finished_at),
                    t(r.store_id),
                    t(r.store_name),
                    t(""),  # 操作员
                    t(""),  # 终端号
                    t(r.buyer_account),
                    fen_to_yuan(r.amount_fen),
                    fen_to_yuan(r.received_fen),
                    "0.00",
                    "0.00",
                    "0.00",
                    "0.00",
                    "0.00",
                    "",
                    t("0.00"),
                    "0.00",
                    t(r.refund_no),
                    fen_to_yuan(r.fee_fen),
                    "0.00",
                    r.remark,
                )
            )
        )
    trades = sum(1 for r in rows if r.kind == TRADE)
    refunds = sum(1 for r in rows if r.kind == REFUND)
    detail.append(f"#{_RULE}业务明细列表结束{_RULE}\r\n")
    detail.append(f"#交易合计：{trades}笔，退款合计：{refunds}笔\r\n")
    detail.append(f"#导出时间：[{exported}]\r\n")

    amount = sum(r.amount_fen for r in rows)
    received = sum(r.received_fen for r in rows)
    fee = sum(r.fee_fen for r in rows)
    summary = ["#支付宝业务汇总查询\r\n", head, f"#{_RULE}业务汇总列表{_RULE}\r\n"]
    summary.append(SUMMARY_HEADER + "\r\n")
    summary.append(
        _csv_line(
            [
                "合计",
                "",
                str(trades),
                str(refunds),
                fen_to_yuan(amount),
                fen_to_yuan(received),
                "0.00",
                "0.00",
                "0.00",
                fen_to_yuan(fee),
                "0.00",
                fen_to_yuan(received - fee),
            ]
        )
    )
    summary.append(f"#{_RULE}业务汇总列表结束{_RULE}\r\n")
    summary.append(f"#导出时间：[{exported}]\r\n")

    _zip_name, detail_name, summary_name = bill_file_names(account, day)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(detail_name, "".join(detail).encode("gbk"))
        archive.writestr(summary_name, "".join(summary).encode("gbk"))
    return buffer.getvalue()


def _data_lines(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [[cell.strip() for cell in row] for row in csv.reader(lines)]


def _preamble(text: str, label: str) -> str:
    match = re.search(rf"#{label}：\[([^\]]*)\]", text)
    if not match:
        raise ValueError(f"bill preamble has no {label}")
    return match.group(1)


def _gbk(name: str, raw: bytes) -> str:
    """A file of the bill zip as text: Alipay writes GBK. A file in another encoding is
    refused saying which (UTF-8 mostly, after a spreadsheet or a script re-saved it): read as
    GBK, a UTF-8 file either fails or, worse, gives other characters in silence."""
    if raw.startswith(codecs.BOM_UTF8):
        raise ValueError(f"{name} is UTF-8 (it starts with a byte order mark), not GBK")
    try:
        text = raw.decode("gbk")
    except UnicodeDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(
                f"{name} is not GBK text: byte 0x{raw[exc.start]:02x} at offset {exc.start}"
            ) from None
        raise ValueError(f"{name} is UTF-8, not GBK") from None
    if not text.isascii() and "#支付宝" not in text:
        try:
            if "#支付宝" in raw.decode("utf-8"):
                raise ValueError(f"{name} is UTF-8, not GBK")
        except UnicodeDecodeError:
            pass
    return text


def parse_bill(archive_bytes: bytes) -> Bill:
    """Read back the zip: the detail rows (tabs stripped, GBK decoded) and the summary's
    合计 line. Raises ValueError on anything that is not an Alipay bill."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(archive_bytes), metadata_encoding="gbk")
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not a zip: {exc}") from None
    detail_text = summary_text = None
    for name in archive.namelist():
        text = _gbk(name, archive.read(name))
        if name.endswith("_业务明细.csv"):
            detail_text = text
        elif name.endswith("_业务明细(汇总).csv"):
            summary_text = text
    if detail_text is None:
        raise ValueError("the zip holds no 业务明细 file")
    account = _preamble(detail_text, "账号")
    begin = _preamble(detail_text, "起始日期")
    day = datetime.strptime(begin.split()[0], "%Y年%m月%d日").replace(tzinfo=BEIJING).date()
    numbered = [
        (n, line)
        for n, line in enumerate(detail_text.splitlines(), start=1)
        if line.strip() and not line.startswith("#")
    ]
    table = [[cell.strip() for cell in row] for row in csv.reader(x for _, x in numbered)]
    if not table:
        raise ValueError("the 业务明细 file has no header")
    _check_detail_header(table[0])
    rows = []
    for (number, _), cells in zip(numbered[1:], table[1:], strict=True):
        if len(cells) != len(table[0]):
            raise ValueError(
                f"业务明细 line {number} has {len(cells)} columns, the header {len(table[0])}"
            )
        try:
            rows.append(dataclasses.replace(_detail_row(cells), line=number))
        except ValueError as exc:
            raise ValueError(f"业务明细 line {number}: {exc}") from None
    summary = None
    if summary_text is not None:
        for cells in _data_lines(summary_text)[1:]:
            if len(cells) > 11 and cells[0] == "合计":
                summary = BillSummary(
                    trade_count=int(cells[2]),
                    refund_count=int(cells[3]),
                    amount_fen=yuan_to_fen(cells[4], signed=True),
                    received_fen=yuan_to_fen(cells[5], signed=True),
                    fee_fen=yuan_to_fen(cells[9], signed=True),
                    net_fen=yuan_to_fen(cells[11], signed=True),
                )
    counted = _DETAIL_COUNTS.search(detail_text)
    detail_counts = None if counted is None else (int(counted[1]), int(counted[2]))
    return Bill(account=account, day=day, rows=rows, summary=summary, detail_counts=detail_counts)


def _check_detail_header(header: list[str]) -> None:
    """Refuse a 业务明细 header that is not Alipay's, naming the columns missing or added."""
    expected = DETAIL_HEADER.split(",")
    if header == expected:
        return
    missing = [c for c in expected if c not in header]
    added = [c for c in header if c not in expected]
    which = [f"missing {', '.join(missing)}"] if missing else []
    which += [f"added {', '.join(added)}"] if added else []
    if not which:
        which = [f"{len(header)} columns, Alipay's {len(expected)} in another order or repeated"]
    raise ValueError(f"the 业务明细 header is not Alipay's: {'; '.join(which)}")


def _detail_row(cells: list[str]) -> BillRow:
    return BillRow(
        trade_no=cells[0],
        out_trade_no=cells[1],
        kind=cells[2],
        subject=cells[3],
        created_at=parse_time(cells[4]),
        finished_at=parse_time(cells[5]),
        store_id=cells[6],
        store_name=cells[7],
        buyer_account=cells[10],
        amount_fen=yuan_to_fen(cells[11], signed=True),
        received_fen=yuan_to_fen(cells[12], signed=True),
        refund_no=cells[21],
        fee_fen=yuan_to_fen(cells[22], signed=True),
        remark=cells[24],
    )


_DETAIL_COUNTS = re.compile(r"^#交易合计：([0-9]+)笔，退款合计：([0-9]+)笔", re.MULTILINE)
