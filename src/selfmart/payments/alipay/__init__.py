"""Alipay open platform: the pure protocol and our merchant account."""

from selfmart.payments.alipay.account import AlipayAccount

__all__ = ["AlipayAccount"]
