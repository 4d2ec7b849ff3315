"""WeChat Pay API v3 (direct merchant): the pure protocol and our merchant account."""

from selfmart.payments.wechatpay.account import WechatPayAccount

__all__ = ["WechatPayAccount"]
