"""An attachment: one file as someone uploaded it, and what it is attached to.

The bytes live in storage under ``sha256`` (``autocrm.files.storage``); many rows may share
them. A row is uploaded unattached (``ticket_id``, ``message_id`` and ``article_id`` all
null), then attached once, when its uploader sends the ticket, message or article it goes
with: to a ticket's description (``ticket_id`` only), to a message (``message_id``, with its
``ticket_id`` kept beside it for the ticket's listing and storage use), or to an article.
Unattached rows older than a day are removed by a sweep.

``scan_status`` is what the malware scan (``autocrm.files.scanning``) found: ``not_scanned``
when no scanner is configured (served as always), else ``pending`` until a worker has scanned
it, then ``clean``, ``infected`` (quarantined: never served again) or ``failed`` (the scanner
stayed unreachable; withheld until it is scanned).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from autocrm.columns import UTCDateTime, utcnow
from autocrm.extensions import Model
from autocrm.people.models import User, enum_values

MAX_FILENAME = 255


class ScanStatus(enum.StrEnum):
    NOT_SCANNED = "not_scanned"
    PENDING = "pending"
    CLEAN = "clean"
    INFECTED = "infected"
    FAILED = "failed"

    @property
    def servable(self) -> bool:
        return self in (ScanStatus.NOT_SCANNED, ScanStatus.CLEAN)


class Attachment(Model):
    __tablename__ = "attachments"
    __table_args__ = (
        Index("ix_attachments_ticket_message", "ticket_id", "message_id"),
        # The sweep of unattached uploads, and "my unattached uploads".
        Index("ix_attachments_uploader_created", "uploader_id", "created_at"),
        # The sweep of scans due (a lost task, or a retry after the scanner failed).
        Index("ix_attachments_scan_status_due", "scan_status", "scan_due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uploader_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(MAX_FILENAME))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    article_id: Mapped[int | None] = mapped_column(
        ForeignKey("kb_articles.id", ondelete="CASCADE"), index=True
    )
    # The key of a smaller copy for the page (images only, made by a worker; None until then).
    thumbnail_sha256: Mapped[str | None] = mapped_column(String(64))
    scan_status: Mapped[ScanStatus] = mapped_column(
        Enum(ScanStatus, native_enum=False, length=20, values_callable=enum_values),
        default=ScanStatus.NOT_SCANNED,
        server_default=ScanStatus.NOT_SCANNED.value,
    )
    # The signature found (infected) or the scanner's last error (pending retries, failed).
    scan_result: Mapped[str | None] = mapped_column(String(255))
    scan_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When a pending scan is next due: a lease while a worker has it, then the retry's time.
    scan_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    uploader: Mapped[User] = relationship()

    @property
    def attached(self) -> bool:
        return self.ticket_id is not None or self.article_id is not None

    def __repr__(self) -> str:
        return f"<Attachment {self.id} {self.filename!r}>"
