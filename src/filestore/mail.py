"""Sending e-mail over SMTP (stdlib `smtplib`, in a worker thread so the event loop never
blocks). Used for password reset links and import invites; off while SMTP_HOST is unset."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

import anyio
import structlog

from filestore.errors import ServiceUnavailable
from filestore.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class MailError(ServiceUnavailable):
    code = "email_unavailable"


def _message(settings: Settings, mail: Mail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr(("Filestore", settings.smtp_from))
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or None)
    message.set_content(mail.body)
    return message


def _send_sync(settings: Settings, mails: Sequence[Mail]) -> list[str | None]:
    """One connection for all of them; per mail, None when accepted or the refusal."""
    assert settings.smtp_host
    results: list[str | None] = []
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds
    ) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password or "")
        for mail in mails:
            try:
                smtp.send_message(_message(settings, mail))
                results.append(None)
            except smtplib.SMTPRecipientsRefused as exc:
                results.append(f"refused: {next(iter(exc.recipients.values()), '')!s}"[:300])
            except ValueError as exc:  # an address the e-mail library will not put in a header
                results.append(f"invalid address: {exc}"[:300])
    return results


async def send_many(settings: Settings, mails: Sequence[Mail]) -> list[str | None]:
    """Send over one SMTP connection; raises `MailError` when the server cannot be used."""
    if not settings.smtp_enabled:
        raise MailError("E-mail is not configured (SMTP_HOST)")
    if not mails:
        return []
    try:
        results = await anyio.to_thread.run_sync(_send_sync, settings, list(mails))
    except (OSError, smtplib.SMTPException) as exc:
        # The reason without credentials: smtplib's messages never contain the password.
        log.error(
            "mail.failed", host=settings.smtp_host, error=f"{type(exc).__name__}: {exc}"[:300]
        )
        raise MailError("The e-mail could not be sent; try again later") from exc
    log.info(
        "mail.sent",
        count=sum(r is None for r in results),
        refused=sum(r is not None for r in results),
    )
    return results


async def send(settings: Settings, mail: Mail) -> None:
    result = (await send_many(settings, [mail]))[0]
    if result is not None:
        raise MailError(f"The mail server refused the recipient ({result})")
