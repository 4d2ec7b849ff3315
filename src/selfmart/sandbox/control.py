"""What the Alipay and UnionPay sandboxes' control APIs (`/_control/...`, documented in
docs/payments.md) share: scripting the next notifications, listing what was received and
sent, and starting afresh. Each sandbox adds the routes of its own on top."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any, Literal, Protocol

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from selfmart.config import Settings

if TYPE_CHECKING:  # the sandboxes' packages import this module
    from selfmart.sandbox.alipay.callbacks import Notifier


class Controlled(Protocol):
    """A sandbox the shared control routes drive."""

    #: what the next gateway calls do instead of the usual
    next_actions: list[dict[str, Any]]
    #: what the next notifications do
    notify_modes: list[dict[str, Any]]
    received: list[dict[str, Any]]
    notifier: Notifier

    def reset(self) -> None: ...


class NextNotify(BaseModel):
    #: twice: sent two times; late: first attempt after `delay_seconds`; bad_signature: the
    #: signature is corrupted; out_of_order: held back and sent after the next notification
    mode: Literal["twice", "late", "bad_signature", "out_of_order"]
    delay_seconds: float = Field(0.0, ge=0, le=3600)


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def queue_next(sandbox: Controlled, body: BaseModel) -> dict[str, Any]:
    """Queue what the next gateway call does (each sandbox has its own model of it)."""
    sandbox.next_actions.append(body.model_dump())
    return {"queued": sandbox.next_actions}


def shared_router(sandbox_for: Callable[[Settings], Controlled]) -> APIRouter:
    """The control routes every one of these sandboxes answers alike."""
    router = APIRouter(include_in_schema=False)

    def sandbox(request: Request) -> Controlled:
        return sandbox_for(settings_of(request))

    @router.post("/_control/notify")
    async def next_notify(request: Request, body: NextNotify) -> dict[str, Any]:
        modes = sandbox(request).notify_modes
        modes.append(body.model_dump())
        return {"queued": modes}

    @router.get("/_control/requests")
    async def list_requests(request: Request, method: str | None = None) -> list[dict[str, Any]]:
        """The last 100 calls received (Alipay's: of one `method` when given)."""
        received = sandbox(request).received
        return [r for r in received if method is None or r.get("method") == method][-100:]

    @router.get("/_control/notifications")
    async def list_notifications(
        request: Request, out_trade_no: str | None = None
    ) -> list[dict[str, Any]]:
        """Every notification sent, with its attempts (Alipay's: of one trade when given)."""
        return [
            d.view()
            for d in sandbox(request).notifier.deliveries
            if out_trade_no is None or d.label.get("out_trade_no") == out_trade_no
        ]

    @router.post("/_control/reset")
    async def reset(request: Request) -> dict[str, str]:
        sandbox(request).reset()
        return {"status": "ok"}

    return router


@dataclass(frozen=True, slots=True)
class Waiting:
    """One payment a person can play the customer for on a sandbox's page."""

    number: str
    kind: str
    description: str
    amount_fen: int
    approve_url: str
    decline_url: str


def pending_page(
    platform: str, items: list[Waiting], *, back_url: str | None = None, return_url: str = ""
) -> str:
    """The small HTML page of a sandbox's pending payments, each with Pay and Decline (the
    buttons post the same control calls a script would; `return_url` goes with them for a
    sandbox that sends the person back after deciding)."""
    keep = (
        f'<input type="hidden" name="return_url" value="{escape(return_url)}">'
        if return_url
        else ""
    )
    rows = "".join(
        f"<tr><td>{escape(w.number)}</td><td>{escape(w.kind)}</td>"
        f"<td>{escape(w.description)}</td><td>¥{w.amount_fen // 100}.{w.amount_fen % 100:02d}</td>"
        f'<td><form method="post" action="{escape(w.approve_url)}" style="display:inline">'
        f'{keep}<button type="submit">Pay</button></form> '
        f'<form method="post" action="{escape(w.decline_url)}" style="display:inline">'
        f'{keep}<button type="submit">Decline</button></form></td></tr>'
        for w in items
    )
    back = f'<p><a href="{escape(back_url)}">Back to the shop</a></p>' if back_url else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width'>"
        f"<title>{escape(platform)} sandbox</title></head><body>"
        f"<h1>{escape(platform)} sandbox: pending payments</h1>"
        "<p>Play the customer: pay or decline a payment that waits for them.</p>"
        "<table border='1' cellpadding='4'><thead><tr><th>number</th><th>type</th>"
        "<th>description</th><th>amount</th><th></th></tr></thead>"
        f"<tbody>{rows or '<tr><td colspan=5>Nothing is waiting.</td></tr>'}</tbody></table>"
        f"{back}</body></html>"
    )
