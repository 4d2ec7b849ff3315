"""The email channel: plain-text UTF-8 mail over SMTP (aiosmtplib), settings.smtp_*.

A message may carry inline images (a report's chart): the text stays the first part and each
image follows as an inline image/* part with a Content-ID. Without images the message is the
same single text/plain part as before."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from selfmart.config import Settings
from selfmart.models import User
from selfmart.notify.channels import DeliveryFailed, Outgoing


def build_message(message: Outgoing, settings: Settings) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = settings.smtp_sender
    mail["To"] = message.recipient
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = make_msgid(domain="selfmart.local")
    text = message.body
    if message.link:
        text = f"{text}\n\n{message.link}" if text else message.link
    mail.set_content(text, charset="utf-8")
    for image in message.images:
        mail.add_attachment(
            image.data,
            maintype="image",
            subtype=image.subtype,
            disposition="inline",
            filename=image.filename,
            cid=make_msgid(domain="selfmart.local"),
        )
    return mail


async def send(message: EmailMessage, settings: Settings) -> None:
    """Hand one built message to the SMTP server of `settings`, or raise DeliveryFailed with a
    reason that holds no secret."""
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=password if settings.smtp_username else None,
            use_tls=settings.smtp_use_tls,
            start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        )
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        # The reason comes from the connection or the server's reply, never our settings'
        # secrets; it is stored on the delivery for operators to read.
        reason = str(exc) or type(exc).__name__
        if password:
            reason = reason.replace(password, "***")
        raise DeliveryFailed(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {reason}") from exc


class EmailChannel:
    name = "email"

    def address_of(self, user: User) -> str | None:
        return user.email or None

    async def deliver(self, message: Outgoing, settings: Settings) -> None:
        await send(build_message(message, settings), settings)
