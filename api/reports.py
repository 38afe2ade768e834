"""Report endpoints: team performance over a period (admins: every team; leads: their team)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from api import schemas
from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from autocrm.reports import services as reports

blp = Blueprint("reports", __name__, url_prefix="/api/reports", description="Reports.")
blp.before_request(require_bearer)


@blp.route("/teams")
class TeamReports(MethodView):
    @blp.arguments(schemas.TeamReportArgsSchema, location="query", unknown=ma.RAISE)
    @blp.response(200, schemas.TeamReportPageSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Neither an admin nor a team lead.")
    @blp.alt_response(404, schema=ErrorSchema, description="No such team, or not one you lead.")
    def get(self, args: dict[str, Any]) -> Any:
        """Per team and agent: volumes, backlog trend, response times, SLA and CSAT."""
        return reports.team_report(current_actor(), **args)
