"""Callback delivery shared by the Alipay and UnionPay sandboxes: each notification is POSTed
to its notify URL, then again on the platform's retry schedule (divided by
`payment_sandbox_time_scale`) until the receiver answers as the platform requires.

Every attempt is kept (time, HTTP status, the first bytes of the answer or the error) so the
control API can show what happened.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from selfmart.kit.time import utcnow

#: Alipay: the first attempt at once, then after 4m, 10m, 10m, 1h, 2h, 6h, 15h.
ALIPAY_RETRY_SECONDS: tuple[float, ...] = (240, 600, 600, 3600, 7200, 21600, 54000)

_ids = itertools.count(1)


@dataclass
class Delivery:
    id: int
    kind: str
    url: str
    body: bytes
    content_type: str
    #: what the delivery is about (out_trade_no, notify_id, ...), for the control API
    label: dict[str, str]
    attempts: list[dict[str, Any]] = field(default_factory=list)
    answered: bool = False
    finished: bool = False

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "url": self.url,
            "body": self.body.decode("utf-8", "replace"),
            "label": self.label,
            "attempts": self.attempts,
            "answered": self.answered,
            "finished": self.finished,
        }


class Notifier:
    """Sends callbacks in the background of whichever event loop asks for them."""

    def __init__(
        self,
        schedule: Sequence[float],
        accepted: Callable[[httpx.Response], bool],
        time_scale: float = 1.0,
    ) -> None:
        self.schedule = tuple(schedule)
        self.accepted = accepted
        self.time_scale = time_scale
        #: tests route callbacks to an in-process receiver with an ASGI transport
        self.transport: httpx.AsyncBaseTransport | None = None
        self.deliveries: list[Delivery] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def send(
        self,
        url: str,
        body: bytes,
        content_type: str,
        *,
        kind: str,
        label: dict[str, str],
        delay_seconds: float = 0.0,
    ) -> Delivery:
        delivery = Delivery(next(_ids), kind, url, body, content_type, label)
        self.deliveries.append(delivery)
        del self.deliveries[:-500]
        task = asyncio.get_running_loop().create_task(self._run(delivery, delay_seconds))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return delivery

    def send_scripted(
        self,
        held: list[tuple[str, bytes, dict[str, str]]],
        mode: dict[str, Any],
        url: str,
        body: bytes,
        content_type: str,
        *,
        kind: str,
        label: dict[str, str],
    ) -> None:
        """Send a notification as the control API scripted it (`mode`): held back in `held`
        until the next one (out_of_order), late, or twice; then whatever was held back."""
        scripted = str(mode.get("mode", ""))
        if scripted == "out_of_order":
            held.append((url, body, label))
            return
        delay = float(mode.get("delay_seconds", 0)) if scripted == "late" else 0.0
        self.send(url, body, content_type, kind=kind, label=label, delay_seconds=delay)
        if scripted == "twice":
            self.send(url, body, content_type, kind=kind, label=label)
        while held:
            held_url, held_body, held_label = held.pop(0)
            self.send(
                held_url, held_body, content_type, kind=kind, label=held_label, delay_seconds=0.05
            )

    async def _run(self, delivery: Delivery, delay_seconds: float) -> None:
        if delay_seconds > 0:
            await asyncio.sleep(delay_seconds)
        waits = (0.0, *self.schedule)
        timeout = max(1.0, 15.0 / self.time_scale)
        try:
            async with httpx.AsyncClient(transport=self.transport, timeout=timeout) as client:
                for wait in waits:
                    if wait:
                        await asyncio.sleep(wait / self.time_scale)
                    attempt: dict[str, Any] = {"at": utcnow().isoformat()}
                    try:
                        response = await client.post(
                            delivery.url,
                            content=delivery.body,
                            headers={"content-type": delivery.content_type},
                        )
                    except httpx.HTTPError as exc:
                        attempt["error"] = f"{type(exc).__name__}: {exc}"
                        delivery.attempts.append(attempt)
                        continue
                    attempt["status"] = response.status_code
                    attempt["answer"] = response.text[:200]
                    delivery.attempts.append(attempt)
                    if self.accepted(response):
                        delivery.answered = True
                        return
        finally:
            delivery.finished = True

    async def drain(self) -> None:
        """Wait for every delivery in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
