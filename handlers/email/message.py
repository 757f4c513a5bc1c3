"""An email ready to go: addresses, subject and both bodies, as the ACS send request and as an
RFC 5322 message (the outbox)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

from handlers.email.templates import EmailContent

_ADDRESS = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
# One namespace for every id derived from a ledger key (operation ids, Message-IDs).
LEDGER_KEY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:aml-event-actions:ledger-key")


def id_for(ledger_key: str) -> str:
    """A UUID that is the same for every attempt of one action on one event."""
    return str(uuid.uuid5(LEDGER_KEY_NAMESPACE, ledger_key))


@dataclass(frozen=True)
class Mailbox:
    address: str
    display_name: str = ""

    @classmethod
    def parse(cls, written: str) -> Mailbox:
        """`ops@contoso.com` or `MLOps team <ops@contoso.com>`; ValueError when it is not an address."""
        name, address = parseaddr(written)
        if not _ADDRESS.match(address):
            raise ValueError(f"{written!r} is not an email address")
        return cls(address, name)

    def to_acs(self) -> dict[str, str]:
        return (
            {"address": self.address, "displayName": self.display_name}
            if self.display_name
            else {"address": self.address}
        )

    def __str__(self) -> str:
        return formataddr((self.display_name, self.address)) if self.display_name else self.address


@dataclass(frozen=True)
class Recipients:
    to: tuple[Mailbox, ...]
    cc: tuple[Mailbox, ...] = ()
    bcc: tuple[Mailbox, ...] = ()
    reply_to: tuple[Mailbox, ...] = ()

    @property
    def count(self) -> int:
        return len(self.to) + len(self.cc) + len(self.bcc)


@dataclass(frozen=True)
class OutgoingEmail:
    sender: Mailbox
    recipients: Recipients
    content: EmailContent

    def to_acs(self) -> dict[str, Any]:
        """The `begin_send` message (camelCase, as the ACS REST API takes it)."""
        recipients = {
            name: [mailbox.to_acs() for mailbox in mailboxes]
            for name, mailboxes in (
                ("to", self.recipients.to),
                ("cc", self.recipients.cc),
                ("bcc", self.recipients.bcc),
            )
            if mailboxes
        }
        message: dict[str, Any] = {
            "senderAddress": self.sender.address,
            "recipients": recipients,
            "content": {"subject": self.content.subject, "plainText": self.content.text, "html": self.content.html},
        }
        if self.recipients.reply_to:
            message["replyTo"] = [mailbox.to_acs() for mailbox in self.recipients.reply_to]
        return message

    def to_mime(self, message_id: str, date: datetime | None = None) -> EmailMessage:
        """multipart/alternative: the plain text first, the HTML last (the part clients prefer)."""
        mime = EmailMessage()
        mime["From"] = str(self.sender)
        for header, mailboxes in (
            ("To", self.recipients.to),
            ("Cc", self.recipients.cc),
            ("Bcc", self.recipients.bcc),
            ("Reply-To", self.recipients.reply_to),
        ):
            if mailboxes:
                mime[header] = ", ".join(str(mailbox) for mailbox in mailboxes)
        mime["Subject"] = self.content.subject
        mime["Date"] = format_datetime(date or datetime.now(UTC))
        mime["Message-ID"] = f"<{message_id}@aml-event-actions>"
        mime.set_content(self.content.text)
        mime.add_alternative(self.content.html, subtype="html")
        return mime
