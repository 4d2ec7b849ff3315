"""The sandbox merchant's and platform's keys, generated on first use under
`payment_sandbox_dir/wechatpay/` so `make run` keeps one merchant across restarts."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from selfmart.kit.time import utcnow
from selfmart.payments.wechatpay import protocol as wx
from selfmart.sandbox import keys as stored


@dataclass(frozen=True, slots=True)
class PlatformCert:
    serial: str
    key: rsa.RSAPrivateKey
    pem: str


@dataclass(frozen=True, slots=True)
class PlatformPublicKey:
    key_id: str
    key: rsa.RSAPrivateKey

    @property
    def public_pem(self) -> str:
        return wx.public_key_pem(self.key.public_key())


@dataclass(frozen=True, slots=True)
class SandboxKeys:
    mchid: str
    appid: str
    api_v3_key: str
    merchant_serial: str
    merchant_key: rsa.RSAPrivateKey
    certificate: PlatformCert
    public_key: PlatformPublicKey


_LOCK = threading.Lock()
_CACHE: dict[Path, SandboxKeys] = {}


def new_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def new_certificate(key: rsa.RSAPrivateKey | None = None) -> PlatformCert:
    """A self-signed platform certificate as WeChat's (RSA 2048, hex serial, 5 years)."""
    key = key or new_rsa()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "selfmart WeChat Pay sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (sandbox)"),
        ]
    )
    now = utcnow()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=5 * 365))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(encoding=serialization.Encoding.PEM).decode()
    return PlatformCert(serial=format(cert.serial_number, "X"), key=key, pem=pem)


def new_public_key() -> PlatformPublicKey:
    return PlatformPublicKey(
        key_id=wx.PUBLIC_KEY_ID_PREFIX + "01" + stored.random_digits(30),
        key=new_rsa(),
    )


def load(directory: Path) -> SandboxKeys:
    """The keys under `directory/wechatpay`, generated the first time."""
    root = (directory / "wechatpay").resolve()
    with _LOCK:
        cached = _CACHE.get(root)
        if cached is not None:
            return cached
        meta = stored.account(root, lambda: _generate(root))
        keys = SandboxKeys(
            mchid=meta["mchid"],
            appid=meta["appid"],
            api_v3_key=meta["api_v3_key"],
            merchant_serial=meta["merchant_serial"],
            merchant_key=wx.load_private_key((root / "merchant_key.pem").read_bytes()),
            certificate=PlatformCert(
                serial=meta["certificate_serial"],
                key=wx.load_private_key((root / "platform_cert_key.pem").read_bytes()),
                pem=(root / "platform_cert.pem").read_text(),
            ),
            public_key=PlatformPublicKey(
                key_id=meta["public_key_id"],
                key=wx.load_private_key((root / "platform_public_key_key.pem").read_bytes()),
            ),
        )
        _CACHE[root] = keys
        return keys


def _generate(root: Path) -> dict[str, str]:
    """New keys: the private keys and the certificate as PEM files beside the account."""
    merchant = new_rsa()
    cert = new_certificate()
    public = new_public_key()
    for name, key in (
        ("merchant_key.pem", merchant),
        ("platform_cert_key.pem", cert.key),
        ("platform_public_key_key.pem", public.key),
    ):
        stored.write_private(root / name, wx.private_key_pem(key))
    (root / "platform_cert.pem").write_text(cert.pem)
    return {
        "mchid": "19" + stored.random_digits(8),
        "appid": "wx" + secrets.token_hex(8),
        # the APIv3 key: 32 characters the merchant sets in the merchant platform
        "api_v3_key": secrets.token_hex(16),
        "merchant_serial": secrets.token_hex(20).upper(),
        "certificate_serial": cert.serial,
        "public_key_id": public.key_id,
    }
