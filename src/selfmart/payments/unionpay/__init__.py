"""UnionPay ACP 5.1.0 (bank cards): the pure protocol and our merchant account."""

from selfmart.payments.unionpay.account import UnionPayAccount

__all__ = ["UnionPayAccount"]
