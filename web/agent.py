"""The agent's live ticket queue: filters, sorting, saved views, bulk actions."""

from __future__ import annotations

from flask import Blueprint, render_template

from autocrm.models import User
from web.session import login_required

bp = Blueprint("agent", __name__, url_prefix="/agent")


@bp.get("/")
@login_required(staff=True)
def queue(user: User) -> str:
    return render_template("agent/queue.html", user=user)
