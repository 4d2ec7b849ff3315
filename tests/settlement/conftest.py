"""Settlement tests that reconcile a real bill use reconciliation's WeChat Pay sandbox."""

from tests.reconciliation.conftest import rec_wechat_sandbox, wechat

__all__ = ["rec_wechat_sandbox", "wechat"]
