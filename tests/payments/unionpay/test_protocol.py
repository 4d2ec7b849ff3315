"""UnionPay ACP 5.1.0 message rules as pure functions. No public test vector with a usable key
exists, so the signature is checked against the openssl command line doing the published
recipe step by step (sha256 hex of the sorted k=v string, then SHA256withRSA, base64)."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from selfmart.payments.unionpay import protocol as u

KEY, CERT = u.make_certificate("test merchant")
OTHER_KEY, OTHER_CERT = u.make_certificate("someone else")

FIELDS = {
    "version": "5.1.0",
    "encoding": "UTF-8",
    "signMethod": "01",
    "txnType": "01",
    "txnSubType": "01",
    "bizType": "000201",
    "accessType": "0",
    "channelType": "07",
    "merId": "777290058110048",
    "orderId": "SM20261206000001",
    "txnTime": "20261206103000",
    "txnAmt": "1234",
    "currencyCode": "156",
    "backUrl": "https://shop.test/api/callbacks/card?x=1&y=2",
    "reqReserved": "",
    "certId": "69629715588",
}


def test_sign_content_sorts_and_skips_empty_and_signature() -> None:
    content = u.sign_content({**FIELDS, "signature": "zzz"})
    assert content.startswith("accessType=0&backUrl=https://shop.test/api/callbacks/card?x=1&y=2")
    assert "reqReserved" not in content
    assert "signature" not in content
    assert content.split("&")[-1] == "version=5.1.0"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_signature_matches_openssl_doing_the_published_steps(tmp_path: Path) -> None:
    signed = u.sign(FIELDS, KEY)
    digest_hex = hashlib.sha256(u.sign_content(FIELDS).encode()).hexdigest()
    key_file = tmp_path / "key.pem"
    key_file.write_text(KEY)
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(key_file)],  # noqa: S607
        input=digest_hex.encode(),
        capture_output=True,
        check=True,
    ).stdout
    # PKCS#1 v1.5 signatures are deterministic: the same bytes
    assert signed["signature"] == base64.b64encode(out).decode()
    u.verify_with(signed, CERT)


def test_verify_refuses_tampering_and_other_keys() -> None:
    signed = u.sign(FIELDS, KEY)
    with pytest.raises(u.SignatureError):
        u.verify_with({**signed, "txnAmt": "1"}, CERT)
    with pytest.raises(u.SignatureError):
        u.verify_with(signed, OTHER_CERT)
    with pytest.raises(u.SignatureError):
        u.verify_with({k: v for k, v in signed.items() if k != "signature"}, CERT)
    with pytest.raises(u.SignatureError):
        u.verify_with({**signed, "signature": "not base64!"}, CERT)


def test_gateway_answers_need_a_trusted_certificate() -> None:
    answer = u.sign({**FIELDS, "signPubKeyCert": CERT, "respCode": "00"}, KEY)
    trusted = {u.cert_id(CERT): CERT}
    assert u.verify_gateway(answer, trusted) == u.cert_id(CERT)
    # a message signed by another key that shows its own certificate is refused
    forged = u.sign({**FIELDS, "signPubKeyCert": OTHER_CERT, "respCode": "00"}, OTHER_KEY)
    with pytest.raises(u.SignatureError, match="not trusted"):
        u.verify_gateway(forged, trusted)
    with pytest.raises(u.SignatureError, match="missing"):
        u.verify_gateway({**answer, "signPubKeyCert": ""}, trusted)


def test_answers_are_split_outside_braces_at_the_first_equals() -> None:
    # an answer's values hold no bare `&` (the gateway wraps such values in braces)
    fields = {k: v for k, v in FIELDS.items() if k != "backUrl"}
    signed = u.sign({**fields, "signPubKeyCert": CERT, "reserved": "{a=1&b=2}"}, KEY)
    body = u.encode_answer(signed)
    assert b"-----BEGIN CERTIFICATE-----\n" in body  # values are not URL-encoded
    decoded = u.decode_answer(body)
    assert decoded == signed
    u.verify_with(decoded, CERT)
    with pytest.raises(ValueError, match="key=value"):
        u.decode_answer(b"a=1&junk")


def test_cert_id_is_the_decimal_serial() -> None:
    _key, cert = u.make_certificate("x", serial=69629715588)
    assert u.cert_id(cert) == "69629715588"


def test_card_numbers_are_encrypted_and_masked() -> None:
    secret = u.encrypt_sensitive("6216261000000000018", CERT)
    assert "6216" not in secret
    assert u.decrypt_sensitive(secret, KEY) == "6216261000000000018"
    assert u.mask_card("6216261000000000018") == "621626*********0018"


@pytest.mark.parametrize("text", ["0", "01", "-1", "1.00", "", "1e3", "1234567890123"])
def test_amounts_refused(text: str) -> None:
    with pytest.raises(ValueError, match="txnAmt"):
        u.parse_amount(text)


def test_amounts_times_and_order_ids() -> None:
    assert u.parse_amount("1") == 1
    assert u.parse_amount("999999999999") == 999_999_999_999
    at = datetime(2026, 12, 6, 2, 30, tzinfo=UTC)
    assert u.format_txn_time(at) == "20261206103000"
    assert u.parse_txn_time("20261206103000") == at
    assert u.valid_order_id("SM20261206")
    assert not u.valid_order_id("SM-2026-12")
    assert not u.valid_order_id("short")
    assert not u.valid_order_id("x" * 33)


def _records() -> list[u.ZmRecord]:
    return [
        u.ZmRecord(
            u.CONSUME,
            "202612061030001234567",
            "SM0000000001",
            "1206103000",
            1234,
            -6,
            1234,
            "621626*********0018",
            "000001",
            "777290058110048",
        ),
        u.ZmRecord(
            u.REFUND,
            "202612061100001234568",
            "SM0000000001R",
            "1206110000",
            234,
            1,
            -234,
            "621626*********0018",
            "000002",
            "777290058110048",
            orig_query_id="202612061030001234567",
            orig_order_id="SM0000000001",
        ),
    ]


def test_zm_file_round_trip_fixed_width_gbk() -> None:
    data = u.encode_zm(_records())
    lines = data.split(b"\r\n")
    widths = [w for _n, w in u.ZM_FIELDS]
    assert len(widths) == 42
    assert all(len(line) == sum(widths) + 41 for line in lines if line)
    assert lines[0].startswith(b"S22 ")
    assert lines[1].startswith(b"S30 ")
    assert b"000000001234" in lines[0]  # txnAmt: 12 digits of fen
    assert b"D000000000006" in lines[0]
    assert b"C000000001234" in lines[0]
    assert u.parse_zm(data) == _records()
    with pytest.raises(ValueError, match="bytes"):
        u.parse_zm(b"S22 short\r\n")


def test_zm_fields_sit_where_a_merchant_reader_of_the_real_file_cuts_them() -> None:
    """The offsets a production reader of the gateway's ZM file uses (docs/payments.md: the
    Sogou pay service's `validateAndParseMessage`): our widths, one space between fields."""
    line = u.encode_zm(_records()).split(b"\r\n")[0].decode("gbk")
    assert line[35:45] == "1206103000"  # 交易传输时间
    assert line[66:78] == "000000001234"  # 交易金额
    assert line[87:108] == "202612061030001234567"  # queryId
    assert line[112:144].strip() == "SM0000000001"  # orderId
    assert line[166] == "D"  # 商户手续费: its sign,
    assert line[167:179] == "000000000006"  # and 12 digits
    assert line[215:217] == u.CONSUME  # txnType


def test_file_content_round_trip() -> None:
    name, archive = u.build_archive("777290058110048", date(2026, 12, 6), _records())
    assert name == "777290058110048_20261206.zip"  # as UnionPay's own sample file is named
    content = u.encode_file_content(archive)
    assert u.decode_file_content(content) == archive
    files = u.read_archive(archive)
    assert list(files) == ["INN26120688ZM_777290058110048"]
    assert files["INN26120688ZM_777290058110048"] == _records()
    with pytest.raises(ValueError, match="not a zip"):
        u.read_archive(b"nope")
