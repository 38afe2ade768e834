"""Admin console: storage used by attachments (in total and by the largest tickets) and the
malware scan: whether files are scanned, how many wait, and the files withheld for good
(infected, or could not be scanned), which an admin can have scanned again."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for

from autocrm.files import scanning
from autocrm.files import services as files
from autocrm.people.models import User
from web.session import admin_required

bp = Blueprint("admin_storage", __name__, url_prefix="/admin/storage")


@bp.get("", endpoint="index")
@admin_required
def index(user: User) -> str:
    return render_template(
        "admin/storage.html",
        user=user,
        usage=files.storage_usage(user),
        scan=scanning.scan_summary(user),
        size=files.human_size,
    )


@bp.post("/rescan")
@admin_required
def rescan(user: User) -> Any:
    count = scanning.do_rescan_failed(user)
    flash(f"{count} file(s) sent to be scanned again.", "success")
    return redirect(url_for(".index"))
