"""A platform's bill file read into one shape: payment and refund lines with the platform's
ids, amounts and fees in fen, and the bill's own totals. Parsing is the platforms' own
`protocol` parsers; this module only maps their columns and refuses what does not add up,
naming the line."""

from __future__ import annotations

import codecs
import mmap
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from selfmart.payments.alipay import protocol as alipay
from selfmart.payments.unionpay import protocol as unionpay
from selfmart.payments.wechatpay import protocol as wechat

BEIJING = ZoneInfo("Asia/Shanghai")
LineKind = Literal["payment", "refund"]


class BillRefused(ValueError):
    """The file is not a readable bill of this account: corrupt, truncated, a broken line,
    another merchant's. Nothing of it is written."""


@dataclass(frozen=True, slots=True)
class BillLine:
    line_no: int
    kind: LineKind
    transaction_id: str
    out_trade_no: str
    #: payments: what was paid; refunds: what was refunded (both positive)
    amount_fen: int
    #: the fee this line costs us (negative: a fee given back with a refund)
    fee_fen: int
    #: the platform's status of the line (SUCCESS for settled money)
    status: str
    occurred_at: datetime | None
    out_refund_no: str = ""
    refund_id: str = ""
    raw: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Trailer:
    count: int | None
    gross_fen: int | None
    refund_fen: int | None
    fee_fen: int | None


@dataclass(frozen=True, slots=True)
class ParsedBill:
    lines: list[BillLine]
    trailer: Trailer


def _money(text: str, line_no: int, column: str) -> int:
    try:
        return alipay.yuan_to_fen(text.strip(), signed=True)
    except ValueError:
        raise BillRefused(f"line {line_no}: {column} is not an amount: {text[:40]!r}") from None


def _beijing(text: str, line_no: int, fmt: str = "%Y-%m-%d %H:%M:%S") -> datetime:
    try:
        return datetime.strptime(text.strip(), fmt).replace(tzinfo=BEIJING)
    except ValueError:
        raise BillRefused(f"line {line_no}: not a time: {text[:40]!r}") from None


def parse(channel: str, data: bytes, *, merchant_id: str, bill_date: date) -> ParsedBill:
    """The bill `data` of `channel` for `merchant_id`; raises `BillRefused`."""
    if channel == "wechat":
        return _wechat(data, merchant_id)
    if channel == "alipay":
        return _alipay(data, merchant_id)
    if channel == "card":
        return _unionpay(data, merchant_id, bill_date)
    raise BillRefused(f"no bill format for channel {channel}")


def _wechat(data: bytes, merchant_id: str) -> ParsedBill:
    read = _wechat_stream(data, merchant_id, chunk=None)
    return ParsedBill(lines=[line for lines in read.chunks for line in lines], trailer=read.trailer)


@dataclass(frozen=True, slots=True)
class _WechatLayout:
    """A trade bill layout WeChat Pay sends: its columns, its totals' columns, and which of
    them hold a payment's amount and the totals' gross and refunds."""

    name: str
    header: list[str]
    totals_header: list[str]
    amount: str
    gross: str
    refunds: str


#: the layouts accepted, by their header line (docs/reconciliation.md says where each is from)
_WECHAT_LAYOUTS = {
    tuple(layout.header): layout
    for layout in (
        _WechatLayout(
            "current", wechat.TRADE_BILL_HEADER, wechat.TRADE_BILL_TOTALS_HEADER,
            amount="订单金额", gross="订单总金额", refunds="退款总金额",
        ),
        # 总金额 is what the current layout calls 应结订单金额 (the order less non-cash
        # coupons); the early bill has no separate order amount, so it is the amount here.
        _WechatLayout(
            "v2", wechat.TRADE_BILL_HEADER_V2, wechat.TRADE_BILL_TOTALS_HEADER_V2,
            amount="总金额", gross="总交易额", refunds="总退款金额",
        ),
    )
}  # fmt: skip


def _wechat_line(
    record: dict[str, str], n: int, merchant_id: str, amount: str = "订单金额"
) -> BillLine:
    if record["商户号"] != merchant_id:
        raise BillRefused(f"line {n}: merchant {record['商户号']!r} is not this account's")
    refund = record["交易状态"] == "REFUND"
    return BillLine(
        line_no=n,
        kind="refund" if refund else "payment",
        transaction_id=record["微信订单号"],
        out_trade_no=record["商户订单号"],
        amount_fen=_money(record["退款金额" if refund else amount], n, "amount"),
        fee_fen=_money(record["手续费"], n, "手续费"),
        status=record["退款状态"] if refund else record["交易状态"],
        occurred_at=_beijing(record["交易时间"], n),
        out_refund_no=record["商户退款单号"] if refund else "",
        refund_id=record["微信退款单号"] if refund else "",
        raw=record,
    )


def _wechat_bill(data: bytes, line_of: Callable[[int], int] | None = None) -> wechat.Bill:
    """The protocol's reading of `data`; `line_of` maps a line number of `data` to the file's
    (when `data` is a piece of the file), so that a refusal names the line in the file."""
    try:
        return wechat.parse_bill(data)
    except (wechat.ProtocolError, UnicodeDecodeError) as exc:
        message = str(exc)
        at = _LINE_NO.match(message)
        if at is not None and line_of is not None:
            message = f"line {line_of(int(at.group(1)))}:{message[at.end() :]}"
        raise BillRefused(f"not a WeChat Pay trade bill: {message}") from None


_LINE_NO = re.compile(r"line (\d+):")


#: a bill's bytes: in memory, or a file on disk mapped (the pages read are the file's)
Data = bytes | mmap.mmap


def _first_line_end(data: Data, pos: int = 0) -> int | None:
    """Where the first line from `pos` that is not blank ends (after its newline)."""
    while True:
        nl = data.find(b"\n", pos)
        if data[pos : len(data) if nl < 0 else nl].strip():
            return None if nl < 0 else nl + 1
        if nl < 0:
            return None
        pos = nl + 1


def _last_lines_start(data: Data, count: int) -> int | None:
    """Where the last `count` lines that are not blank start."""
    end, found = len(data), 0
    while True:
        nl = data.rfind(b"\n", 0, end)
        if data[nl + 1 : end].strip():
            found += 1
            if found == count:
                return nl + 1
        if nl < 0:
            return None
        end = nl


@dataclass(frozen=True, slots=True)
class StreamedBill:
    """A bill whose totals are read and whose lines come chunk by chunk (`chunks` may raise
    `BillRefused` at a broken line: what was done with the earlier chunks must be undone)."""

    trailer: Trailer
    chunks: Iterator[list[BillLine]]


def release(data: Data, start: int, end: int) -> None:
    """Give back the pages of a mapped bill's `data[start:end]` once read: a mapped file's
    pages read stay resident (and counted as the process's memory) until the kernel wants
    them, so reading a bill through would hold all of it. Pages are read again if touched."""
    if isinstance(data, mmap.mmap):
        first = start - start % mmap.PAGESIZE
        last = end - end % mmap.PAGESIZE
        if last > first:
            data.madvise(mmap.MADV_DONTNEED, first, last - first)


def _newlines(data: Data, start: int, end: int) -> int:
    """How many line ends `data[start:end]` has, read a MiB at a time (a mapped file has no
    `count`, and a slice of all of it would be the whole bill in memory)."""
    step, count = 1 << 20, 0
    for i in range(start, end, step):
        count += data[i : min(i + step, end)].count(b"\n")
        release(data, i, min(i + step, end))
    return count


def check_totals(trailer: Trailer, found: dict[str, int]) -> None:
    """Refuse a bill whose lines (`found`: lines, gross, refunds, fees) do not add up to its
    own totals (a truncated or altered file), naming what the totals say and what was found."""
    said = {"lines": trailer.count, "gross": trailer.gross_fen, "refunds": trailer.refund_fen,
            "fees": trailer.fee_fen}  # fmt: skip
    _check_figures(said, found)


def _check_figures(
    said: Mapping[str, int | None], found: Mapping[str, int], where: str = ""
) -> None:
    """Refuse unless each figure `found` is the one the bill `said` (None: the bill does not
    say). A figure whose name ends in "lines" is a count, any other fen."""
    off = [
        f"{name} {said[name]}{u} expected, {found[name]}{u} found"
        for name in found
        for u in ("" if name.endswith("lines") else " fen",)
        if said.get(name) is not None and said[name] != found[name]
    ]
    if off:
        raise BillRefused(
            "the lines do not add up to the bill's own totals: " + "; ".join(off) + where
        )


def _wechat_stream(data: Data, merchant_id: str, *, chunk: int | None) -> StreamedBill:
    """WeChat's trade bill, `chunk` lines at a time (None: all at once). The header and the
    totals (the file's first line and last two) are read and checked first, so a truncated or
    foreign file is refused before any line is given; each piece of the file is then read by
    the protocol's own parser (the header, the piece's lines, the totals), so that the whole
    file is never held as text or records."""
    bom = len(codecs.BOM_UTF8) if data[: len(codecs.BOM_UTF8)] == codecs.BOM_UTF8 else 0
    head_end = _first_line_end(data, bom)
    tail_start = _last_lines_start(data, 2)
    if head_end is None or tail_start is None or tail_start < head_end:
        _wechat_bill(data[:])  # fewer than three lines: the protocol says so
        raise BillRefused("not a WeChat Pay trade bill: no header and totals")
    head, tail = data[bom:head_end], data[tail_start:]
    head_lines = len(head.decode("utf-8", errors="replace").splitlines())
    totals_line = _newlines(data, bom, tail_start) + 2

    def tail_line(n: int) -> int:
        return n if n <= head_lines else n - head_lines - 1 + totals_line - 1

    bill = _wechat_bill(head + tail, tail_line)
    layout = _WECHAT_LAYOUTS.get(tuple(bill.header))
    if layout is None:
        raise BillRefused("line 1: the columns are not WeChat Pay's trade bill columns")
    if bill.totals_header != layout.totals_header:
        raise BillRefused(
            f"line {totals_line - 1}: the totals' columns are not those of WeChat Pay's "
            f"{layout.name} trade bill"
        )
    s = bill.summary()
    try:
        trailer = Trailer(
            count=int(s["总交易单数"]),
            gross_fen=_money(s[layout.gross], totals_line, layout.gross),
            refund_fen=_money(s[layout.refunds], totals_line, layout.refunds),
            fee_fen=_money(s["手续费总金额"], totals_line, "手续费总金额"),
        )
    except (KeyError, ValueError) as exc:
        raise BillRefused(f"line {totals_line}: unreadable totals: {exc}") from None

    def chunks() -> Iterator[list[BillLine]]:
        # `first`: the file's line number of the piece's first line, as the protocol counts
        # lines (str.splitlines); `n`: the record's number as a bill line (header is 1).
        start, first, n = head_end, head_lines + 1, 2
        while start < tail_start:
            end = tail_start
            if chunk is not None:
                pos = start
                for _ in range(chunk):
                    nl = data.find(b"\n", pos, tail_start)
                    if nl < 0:
                        break
                    pos = nl + 1
                end = pos if pos > start else tail_start
            piece = data[start:end]
            release(data, start, end)
            piece_first = first

            def line_of(m: int, piece_first: int = piece_first) -> int:
                return m if m <= head_lines else m - head_lines - 1 + piece_first

            lines: list[BillLine] = []
            for record in _wechat_bill(head + piece + tail, line_of).records():
                lines.append(_wechat_line(record, n, merchant_id, layout.amount))
                n += 1
            yield lines
            first += len(piece.decode("utf-8", errors="replace").splitlines())
            start = end

    return StreamedBill(trailer, chunks())


def stream(
    channel: str, data: Data, *, merchant_id: str, bill_date: date, chunk: int
) -> StreamedBill:
    """The bill `data` as `parse` reads it, its lines `chunk` at a time: WeChat Pay's (the bill
    that runs to a million lines) read piece by piece; the others' read whole, then given in
    chunks. Raises `BillRefused` for a file that cannot be a bill before any line is given."""
    if channel == "wechat":
        return _wechat_stream(data, merchant_id, chunk=chunk)
    parsed = parse(channel, data[:], merchant_id=merchant_id, bill_date=bill_date)
    lines = parsed.lines
    return StreamedBill(parsed.trailer, (lines[i : i + chunk] for i in range(0, len(lines), chunk)))


def _alipay(data: bytes, merchant_id: str) -> ParsedBill:
    try:
        bill = alipay.parse_bill(data)
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise BillRefused(f"not an Alipay bill: {exc}") from None
    if merchant_id and not bill.account.startswith(merchant_id):
        raise BillRefused(f"the bill is account {bill.account!r}'s, not this account's")
    lines = [
        BillLine(
            # the line of the detail file, as a refusal of a bad line names it
            line_no=row.line or index + 1,
            kind="refund" if row.kind == alipay.REFUND else "payment",
            transaction_id=row.trade_no,
            out_trade_no=row.out_trade_no,
            amount_fen=abs(row.amount_fen),
            fee_fen=row.fee_fen,
            status="SUCCESS",
            occurred_at=row.finished_at,
            out_refund_no=row.refund_no,
            raw={"trade_no": row.trade_no, "out_trade_no": row.out_trade_no, "kind": row.kind},
        )
        for index, row in enumerate(bill.rows)
    ]
    _alipay_totals(bill)
    s = bill.summary
    counts = bill.detail_counts
    trailer = (
        Trailer(None if counts is None else sum(counts), None, None, None)
        if s is None
        else Trailer(
            # the 合计 line gives the count and fees; its amount is net of refunds
            count=s.trade_count + s.refund_count,
            gross_fen=None,
            refund_fen=None,
            fee_fen=s.fee_fen,
        )
    )
    return ParsedBill(lines=lines, trailer=trailer)


def _alipay_totals(bill: alipay.Bill) -> None:
    """Refuse an Alipay bill whose detail lines do not add up to its own totals, before any
    line is written: the 汇总 file's 合计 (trades and refunds counted, 订单金额 and 商家实收
    net of refunds, 服务费) and the detail file's closing `#交易合计：N笔，退款合计：M笔`."""
    refunds = sum(1 for r in bill.rows if r.kind == alipay.REFUND)
    found = {
        "lines": len(bill.rows),
        "payment lines": len(bill.rows) - refunds,
        "refund lines": refunds,
        "amount": sum(r.amount_fen for r in bill.rows),
        "received": sum(r.received_fen for r in bill.rows),
        "fees": sum(r.fee_fen for r in bill.rows),
    }
    s = bill.summary
    if s is not None:
        said = {
            "lines": s.trade_count + s.refund_count, "payment lines": s.trade_count,
            "refund lines": s.refund_count, "amount": s.amount_fen,
            "received": s.received_fen, "fees": s.fee_fen,
        }  # fmt: skip
        _check_figures(said, found, " (the 业务明细(汇总) file's 合计)")
    if bill.detail_counts is not None:
        trades, refunded = bill.detail_counts
        said = {"lines": trades + refunded, "payment lines": trades, "refund lines": refunded}
        _check_figures(said, found, " (the 业务明细 file's 交易合计)")


def _year(mmdd_time: str, bill_date: date) -> str:
    """The year of a ZM time (MMDDhhmmss has none): the settlement day's, or the year before
    for a December transaction settled in January."""
    late_in_year = mmdd_time[:2] == "12" and bill_date.month == 1
    return str(bill_date.year - 1 if late_in_year else bill_date.year)


def _unionpay(data: bytes, merchant_id: str, bill_date: date) -> ParsedBill:
    try:
        files = unionpay.read_archive(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BillRefused(f"not a UnionPay reconciliation file: {exc}") from None
    lines: list[BillLine] = []
    for records in files.values():
        for index, r in enumerate(records):
            n = index + 1
            if r.mer_id != merchant_id:
                raise BillRefused(f"line {n}: merchant {r.mer_id!r} is not this account's")
            refund = r.txn_type != unionpay.CONSUME
            lines.append(
                BillLine(
                    line_no=n,
                    kind="refund" if refund else "payment",
                    transaction_id=r.orig_query_id if refund else r.query_id,
                    out_trade_no=r.orig_order_id if refund else r.order_id,
                    amount_fen=r.amount_fen,
                    fee_fen=-r.fee_fen,
                    status="SUCCESS",
                    occurred_at=_beijing(
                        _year(r.txn_time, bill_date) + r.txn_time, n, "%Y%m%d%H%M%S"
                    ),
                    out_refund_no=r.order_id if refund else "",
                    refund_id=r.query_id if refund else "",
                    raw={"txnType": r.txn_type, "queryId": r.query_id, "orderId": r.order_id},
                )
            )
    return ParsedBill(lines=lines, trailer=Trailer(None, None, None, None))


@dataclass(frozen=True, slots=True)
class FundFlow:
    """A fund-flow bill: the account's money movements of the day, summed by what they were.
    Expenses (refunds, fees) are positive; a fee given back counts against the fees."""

    count: int
    income_fen: int
    refund_fen: int
    fee_fen: int
    #: movements that are none of the above (withdrawals, transfers), signed: + in, - out
    other_fen: int
    trailer_income_fen: int
    trailer_expense_fen: int


def parse_fundflow(channel: str, data: bytes) -> FundFlow:
    """WeChat Pay's fund-flow bill (资金账单): its lines must add up to its own totals;
    raises `BillRefused` naming the line otherwise."""
    if channel != "wechat":
        raise BillRefused(f"no fund-flow bill format for channel {channel}")
    try:
        bill = wechat.parse_bill(data)
    except (wechat.ProtocolError, UnicodeDecodeError) as exc:
        raise BillRefused(f"not a WeChat Pay fund-flow bill: {exc}") from None
    if bill.header != wechat.FUNDFLOW_BILL_HEADER:
        raise BillRefused("line 1: the columns are not WeChat Pay's fund-flow bill columns")
    income = refund = fee = other = 0
    incomes = expenses = 0
    for index, record in enumerate(bill.records()):
        n = index + 2
        direction = record["收支类型"]
        if direction not in ("收入", "支出"):
            raise BillRefused(f"line {n}: 收支类型 is neither 收入 nor 支出: {direction[:20]!r}")
        amount = _money(record["收支金额（元）"], n, "收支金额（元）")
        if amount < 0:
            raise BillRefused(f"line {n}: 收支金额（元） is negative")
        signed = amount if direction == "收入" else -amount
        if direction == "收入":
            incomes += amount
        else:
            expenses += amount
        name = record["业务名称"]
        if "手续费" in name:
            fee -= signed
        elif name == "退款" or record["业务类型"] == "退款":
            refund -= signed
        elif name == "交易" and direction == "收入":
            income += amount
        else:
            other += signed
    s = bill.summary()
    end = len(bill.rows) + 3
    try:
        count = int(Decimal(s["资金流水总笔数"]))
        trailer_income = _money(s["收入金额"], end, "收入金额")
        trailer_expense = _money(s["支出金额"], end, "支出金额")
    except (KeyError, ValueError, ArithmeticError) as exc:
        raise BillRefused(f"line {end}: unreadable totals: {exc}") from None
    if count != len(bill.rows):
        raise BillRefused(
            f"line {end}: the totals count {count} lines, the file has {len(bill.rows)}"
        )
    if (incomes, expenses) != (trailer_income, trailer_expense):
        raise BillRefused(
            f"line {end}: the lines add up to {incomes} fen in and {expenses} fen out, "
            f"the totals say {trailer_income} and {trailer_expense}"
        )
    return FundFlow(
        count=count,
        income_fen=income,
        refund_fen=refund,
        fee_fen=fee,
        other_fen=other,
        trailer_income_fen=trailer_income,
        trailer_expense_fen=trailer_expense,
    )
