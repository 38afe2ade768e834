"""Workflow administration endpoints (admins only): workflows, versions, diagrams, the draft
(edit, validate, simulate, publish). Schemas live here: they serve only these endpoints."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from api.schemas import Id, StrictSchema
from autocrm.engine import drafts, publishing, simulation

blp = Blueprint(
    "workflows",
    __name__,
    url_prefix="/api/workflows",
    description="Workflow definitions: versions, diagrams, drafts, simulation, publishing.",
)
blp.before_request(require_bearer)

SVG = "image/svg+xml"
ADMINS_ONLY = "Admins only."
NOT_FOUND = "No such workflow, version or draft."
LOCATED = "Field locations (`transitions.2.to`) map to their messages."


# -- schemas ------------------------------------------------------------------------------------


class WorkflowSummarySchema(ma.Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    is_default = fields.Boolean()
    latest_version = fields.Integer(
        allow_none=True, metadata={"description": "Null until the first publish."}
    )
    has_draft = fields.Boolean()
    draft_updated_at = fields.DateTime(allow_none=True)


class VersionSummarySchema(ma.Schema):
    number = fields.Integer()
    created_at = fields.DateTime()
    note = fields.String()
    published_by_id = fields.Integer(allow_none=True)


class VersionSchema(VersionSummarySchema):
    definition = fields.Dict()


class WorkflowSchema(ma.Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    is_default = fields.Boolean()
    created_at = fields.DateTime()
    versions = fields.List(fields.Nested(VersionSummarySchema))
    draft = fields.Dict(allow_none=True, metadata={"description": "As entered, valid or not."})
    draft_updated_at = fields.DateTime(allow_none=True)


class WorkflowCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=80))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    copy_from = Id(
        metadata={"description": "A workflow whose newest version the draft starts from."}
    )
    definition = fields.Dict(
        metadata={"description": "The draft to start from (default: the bundled workflow)."}
    )


ERRORS = fields.Dict(
    keys=fields.String(),
    values=fields.List(fields.String()),
    metadata={"description": LOCATED},
)


class DraftSchema(StrictSchema):
    definition = fields.Dict(required=True, metadata={"description": "Saved exactly as sent."})


class ValidateRequestSchema(StrictSchema):
    definition = fields.Dict(
        metadata={"description": "Check this definition (nothing is saved); default: the draft."}
    )


class ValidationResultSchema(ma.Schema):
    valid = fields.Boolean()
    errors = ERRORS


class DraftCheckSchema(ValidationResultSchema):
    draft = fields.Dict()


class SimulateRequestSchema(StrictSchema):
    limit = fields.Integer(
        load_default=50,
        strict=True,
        validate=validate.Range(min=1, max=simulation.MAX_SIMULATED_TICKETS),
        metadata={"description": "How many of the newest tickets to replay."},
    )


OUTCOMES = {"enum": ["met", "breached", "open", "none"]}
VERDICTS = {"enum": ["allowed", "refused"]}


class RuleDifferenceSchema(ma.Schema):
    rule = fields.String()
    at = fields.DateTime()
    trigger = fields.String(metadata={"description": "The event kind, or `time`."})


class SlaOutcomeSchema(ma.Schema):
    published = fields.String(
        metadata={**OUTCOMES, "description": "Replayed under the version the ticket ran on."}
    )
    draft = fields.String(metadata={**OUTCOMES, "description": "Replayed under the draft."})
    published_due_at = fields.DateTime(allow_none=True)
    draft_due_at = fields.DateTime(allow_none=True)
    actual = fields.String(
        metadata={
            **OUTCOMES,
            "description": "Same as `published` (the name older clients read). It is the "
            "published version's replay, not the recorded outcome.",
            "deprecated": True,
        }
    )


class TransitionDifferenceSchema(ma.Schema):
    transition = fields.String(metadata={"description": "As recorded in the ticket's trail."})
    at = fields.DateTime()
    published = fields.String(metadata=VERDICTS)
    draft = fields.String(metadata=VERDICTS)
    reason = fields.String(metadata={"description": "Why it is refused."})


class StateDifferenceSchema(ma.Schema):
    at = fields.DateTime()
    event = fields.String(
        metadata={"description": "The transition's name, or the event kind that set a state."}
    )
    published = fields.String(allow_none=True)
    draft = fields.String(allow_none=True)


class TicketSimulationSchema(ma.Schema):
    ticket_id = fields.Integer()
    differs = fields.Boolean()
    would_fire_not_fired = fields.List(
        fields.Nested(RuleDifferenceSchema),
        metadata={
            "description": "Rules the draft would fire that the published version would not."
        },
    )
    fired_would_not = fields.List(
        fields.Nested(RuleDifferenceSchema),
        metadata={"description": "Rules the published version fires that the draft would not."},
    )
    transitions = fields.List(
        fields.Nested(TransitionDifferenceSchema),
        metadata={
            "description": "Recorded transitions one of the two allows and the other refuses."
        },
    )
    states = fields.List(
        fields.Nested(StateDifferenceSchema),
        metadata={"description": "Where the ticket would be in a different state afterwards."},
    )
    sla = fields.Dict(keys=fields.String(), values=fields.Nested(SlaOutcomeSchema))
    caveats = fields.List(
        fields.String(),
        metadata={
            "description": "What the simulation could not model for this ticket (say, the "
            "actions of a rule only the draft fires), in words."
        },
    )


class SimulationSummarySchema(ma.Schema):
    simulated = fields.Integer()
    with_differences = fields.Integer()
    with_caveats = fields.Integer()


class SimulationReportSchema(ma.Schema):
    summary = fields.Function(
        lambda report: SimulationSummarySchema().dump(report),
        metadata={
            "description": "Tickets replayed, how many would go differently, and how many "
            "carry caveats."
        },
    )
    tickets = fields.List(fields.Nested(TicketSimulationSchema))


class PublishSchema(StrictSchema):
    note = fields.String(load_default="", validate=validate.Length(max=5000))
    make_default = fields.Boolean(
        load_default=False, metadata={"description": "New tickets then pin this version."}
    )
    state_map = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=50)),
        values=fields.String(validate=validate.Length(min=1, max=50)),
        metadata={
            "description": "Move in-flight tickets onto the new version: every state they use, "
            "mapped to a state of the new version. Without it tickets keep their versions."
        },
    )


# -- endpoints ----------------------------------------------------------------------------------


def _svg(document: str) -> Response:
    return Response(document, mimetype=SVG)


def _svg_response() -> dict[str, Any]:
    return {"200": {"description": "The state diagram.", "content": {SVG: {"schema": {}}}}}


@blp.route("")
class WorkflowCollection(MethodView):
    @blp.response(200, WorkflowSummarySchema(many=True))
    @blp.alt_response(403, schema=ErrorSchema, description=ADMINS_ONLY)
    def get(self) -> Any:
        """List workflows with their newest version number and draft state."""
        return drafts.list_workflows(current_actor())

    @blp.arguments(WorkflowCreateSchema)
    @blp.response(201, WorkflowSchema)
    @blp.alt_response(403, schema=ErrorSchema, description=ADMINS_ONLY)
    @blp.alt_response(422, schema=ErrorSchema, description="Name taken, or nothing to copy.")
    def post(self, body: dict[str, Any]) -> Any:
        """Create a workflow; its draft copies `copy_from`'s newest version, `definition`, or
        the bundled default. Nothing is published yet."""
        return drafts.do_create_workflow(current_actor(), **body)


@blp.route("/<id:workflow_id>")
class WorkflowItem(MethodView):
    @blp.response(200, WorkflowSchema)
    @blp.alt_response(403, schema=ErrorSchema, description=ADMINS_ONLY)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def get(self, workflow_id: int) -> Any:
        """A workflow, its versions and its draft."""
        return drafts.access_workflow_by_id(current_actor(), workflow_id)


@blp.route("/<id:workflow_id>/versions/<id:number>")
class WorkflowVersionItem(MethodView):
    @blp.response(200, VersionSchema)
    @blp.alt_response(403, schema=ErrorSchema, description=ADMINS_ONLY)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def get(self, workflow_id: int, number: int) -> Any:
        """One published version, with its definition."""
        return drafts.access_version(current_actor(), workflow_id, number)


@blp.route("/<id:workflow_id>/versions/<id:number>/diagram.svg")
class WorkflowVersionDiagram(MethodView):
    @blp.doc(responses=_svg_response())
    @blp.alt_response(403, schema=ErrorSchema, description=ADMINS_ONLY)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def get(self, workflow_id: int, number: int) -> Any:
        """A published version's state diagram (SVG)."""
        return _svg(drafts.version_diagram(current_actor(), workflow_id, number))


@blp.route("/<id:workflow_id>/draft")
class WorkflowDraft(MethodView):
    @blp.arguments(DraftSchema)
    @blp.response(200, DraftCheckSchema)
    @blp.alt_response(403, schema=ErrorSchema, description=ADMINS_ONLY)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def put(self, body: dict[str, Any], workflow_id: int) -> Any:
        """Save the draft exactly as sent (even if invalid) and say what is wrong with it."""
        return drafts.do_save_draft(current_actor(), workflow_id, body["definition"])


@blp.route("/<id:workflow_id>/draft/diagram.svg")
class WorkflowDraftDiagram(MethodView):
    @blp.doc(responses=_svg_response())
    @blp.alt_response(403, schema=ErrorSchema, description=ADMINS_ONLY)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.alt_response(422, schema=ErrorSchema, description="The draft is too broken to draw.")
    def get(self, workflow_id: int) -> Any:
        """The draft's state diagram (SVG); an invalid draft is drawn if its shape allows."""
        return _svg(drafts.draft_diagram(current_actor(), workflow_id))


@blp.route("/<id:workflow_id>/draft/validate")
class WorkflowDraftValidate(MethodView):
    @blp.arguments(ValidateRequestSchema)
    @blp.response(200, ValidationResultSchema)
    @blp.alt_response(403, schema=ErrorSchema, description=ADMINS_ONLY)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def post(self, body: dict[str, Any], workflow_id: int) -> Any:
        """Validate the draft (or the `definition` sent): errors keyed by location."""
        return drafts.check_draft(current_actor(), workflow_id, body.get("definition"))


@blp.route("/<id:workflow_id>/draft/simulate")
class WorkflowDraftSimulate(MethodView):
    @blp.arguments(SimulateRequestSchema)
    @blp.response(200, SimulationReportSchema)
    @blp.alt_response(403, schema=ErrorSchema, description=ADMINS_ONLY)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.alt_response(422, schema=ErrorSchema, description="The draft is invalid. " + LOCATED)
    def post(self, body: dict[str, Any], workflow_id: int) -> Any:
        """Replay the newest tickets' recorded history twice, under the version each ran on and
        under the draft, and report where the two differ: rules that would fire differently,
        transitions refused, states reached, SLA outcomes and due times; plus, per ticket,
        caveats on what the simulation could not model."""
        return simulation.simulate_draft(current_actor(), workflow_id, body["limit"])


@blp.route("/<id:workflow_id>/draft/publish")
class WorkflowDraftPublish(MethodView):
    @blp.arguments(PublishSchema)
    @blp.response(201, VersionSchema)
    @blp.alt_response(403, schema=ErrorSchema, description=ADMINS_ONLY)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorSchema, description="Published or changed meanwhile.")
    @blp.alt_response(
        422,
        schema=ErrorSchema,
        description="Invalid draft, or a state map missing a state in use (`state_map.<state>`).",
    )
    def post(self, body: dict[str, Any], workflow_id: int) -> Any:
        """Publish the draft as the next version; optionally make it the default and move
        in-flight tickets onto it with a state map."""
        return publishing.do_publish(current_actor(), workflow_id, **body)
