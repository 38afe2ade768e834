"""An attachment: one file as someone uploaded it, and what it is attached to.

The bytes live in storage under ``sha256`` (``autocrm.files.storage``); many rows may share
them. A row is uploaded unattached (``ticket_id``, ``message_id`` and ``article_id`` all
null), then attached once, when its uploader sends the ticket, message or article it goes
with: to a ticket's description (``ticket_id`` only), to a message (``message_id``, with its
``ticket_id`` kept beside it for the ticket's listing and storage use), or to an article.
Unattached rows older than a day are removed by a sweep.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from autocrm.columns import UTCDateTime, utcnow
from autocrm.extensions import Model
from autocrm.people.models import User

MAX_FILENAME = 255


class Attachment(Model):
    __tablename__ = "attachments"
    __table_args__ = (
        Index("ix_attachments_ticket_message", "ticket_id", "message_id"),
        # The sweep of unattached uploads, and "my unattached uploads".
        Index("ix_attachments_uploader_created", "uploader_id", "created_at"),
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

    uploader: Mapped[User] = relationship()

    @property
    def attached(self) -> bool:
        return self.ticket_id is not None or self.article_id is not None

    def __repr__(self) -> str:
        return f"<Attachment {self.id} {self.filename!r}>"
