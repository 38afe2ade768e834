"""Site-wide choices made in the admin console, one row per key (a small key/value table:
a handful of switches do not each deserve a table)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from autocrm.columns import JSONType, UTCDateTime, utcnow
from autocrm.extensions import Model


class SiteSetting(Model):
    """One choice, ``value`` in plain JSON; a missing row means the default in
    ``autocrm.site.settings.DEFAULTS``."""

    __tablename__ = "site_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
