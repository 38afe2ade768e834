"""Request and response schemas of the REST API (the OpenAPI spec is generated from these)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from autocrm import markdown
from autocrm.columns import MAX_INT32
from autocrm.files.representation import AttachmentSchema
from autocrm.kb.models import ArticleStatus, ArticleVisibility
from autocrm.mail.models import ImapSecurity
from autocrm.people.models import AssignmentPolicy, Role
from autocrm.tickets.conversation import MAX_MESSAGE_LENGTH
from autocrm.tickets.models import Priority
from autocrm.tickets.representation import (
    MessageSchema,
    PriorityField,
    StaffTicketViewSchema,
    TicketSchema,
    TrailEntrySchema,
)
from autocrm.tickets.services import (
    MAX_SEARCH_LENGTH,
    MAX_SOLVED_WITHIN_DAYS,
    MAX_TAG_LENGTH,
    SLA_FILTERS,
)
from autocrm.tickets.views import SORTS as VIEW_SORTS
from autocrm.tickets.views import ViewFiltersSchema
from autocrm.webhooks.models import EVENT_KINDS
from workflows.definition import CATEGORIES

# Ids are 32-bit on PostgreSQL; a larger number is invalid input, not a database error.
MAX_ID = MAX_INT32


class Id(fields.Integer):
    """A row id in a request: a whole number from 1 to MAX_ID (strict in JSON bodies)."""

    def __init__(self, *, strict: bool = True, minimum: int = 1, **kwargs: Any) -> None:
        super().__init__(strict=strict, validate=validate.Range(min=minimum, max=MAX_ID), **kwargs)


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


# -- auth ----------------------------------------------------------------------------------------


class TokenRequestSchema(StrictSchema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=1024))
    otp = fields.String(
        load_default=None,
        load_only=True,
        validate=validate.Length(max=64),
        metadata={
            "description": "For accounts with two-factor login: the current 6-digit code from "
            "the authenticator app, or an unused recovery code (spent by this request). "
            "Missing or wrong: 401 with `errors.otp`.",
            "example": "123456",
        },
    )


class TokenSchema(ma.Schema):
    access_token = fields.String()
    token_type = fields.String(metadata={"example": "Bearer"})
    expires_in = fields.Integer(metadata={"description": "Seconds until the token expires."})


class ApiTokenSchema(ma.Schema):
    id = fields.Integer()
    name = fields.String()
    scope = fields.String(metadata={"enum": ["read", "write", "admin"]})
    prefix = fields.String(metadata={"description": "The token's first characters."})
    created_at = fields.DateTime()
    expires_at = fields.DateTime(allow_none=True)
    last_used_at = fields.DateTime(
        allow_none=True, metadata={"description": "Updated at most once a minute."}
    )


class ApiTokenCreatedSchema(ApiTokenSchema):
    token = fields.String(
        metadata={"description": "The token itself: shown this once, never stored."}
    )


class ApiTokenRevokedSchema(ma.Schema):
    id = fields.Integer()
    revoked = fields.Boolean()


class ApiTokenCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    scope = fields.String(
        required=True,
        validate=validate.OneOf(["read", "write", "admin"]),
        metadata={
            "description": "read: GET only. write: what you may do, without administration. "
            "admin (admins only): everything."
        },
    )
    expires_in_days = fields.Integer(
        load_default=90,
        allow_none=True,
        validate=validate.Range(min=1, max=366),
        metadata={"description": "Days until it stops working (null: never). Default 90."},
    )


# -- users and teams -----------------------------------------------------------------------------


class SessionsEndedSchema(ma.Schema):
    ended = fields.Integer(metadata={"description": "How many web sessions ended."})


class OrganizationRefSchema(ma.Schema):
    id = fields.Integer()
    name = fields.String()


class UserSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    email = fields.Email()
    name = fields.String()
    role = fields.Enum(Role, by_value=True)
    active = fields.Boolean()
    team_ids = fields.List(fields.Integer(), dump_only=True)
    organization = fields.Nested(
        OrganizationRefSchema,
        dump_only=True,
        allow_none=True,
        metadata={"description": "The customer's organization, or null."},
    )
    organization_manager = fields.Boolean(
        dump_only=True,
        metadata={"description": "Whether the customer sees the organization's tickets."},
    )
    created_at = fields.DateTime(dump_only=True)


class UserCreateSchema(StrictSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=1024))
    role = fields.Enum(Role, by_value=True, required=True)
    name = fields.String(validate=validate.Length(min=1, max=120))


class InvitationSchema(StrictSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    name = fields.String(load_default="", validate=validate.Length(max=120))


class UserUpdateSchema(StrictSchema):
    email = fields.Email(validate=validate.Length(max=254))
    password = fields.String(load_only=True, validate=validate.Length(max=1024))
    role = fields.Enum(Role, by_value=True)
    name = fields.String(validate=validate.Length(min=1, max=120))
    active = fields.Boolean()


class UserListArgsSchema(StrictSchema):
    role = fields.Enum(Role, by_value=True)
    active = fields.Boolean(metadata={"description": "false: only deactivated users."})
    team_id = Id(strict=False, metadata={"description": "Only the members of this team."})
    q = fields.String(validate=validate.Length(min=1, max=200))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String()


ASSIGNMENT = {
    "assignment_policy": fields.Enum(
        AssignmentPolicy,
        by_value=True,
        metadata={"description": "How new tickets of the team get an agent automatically."},
    ),
    "max_open_per_agent": fields.Integer(
        allow_none=True,
        strict=True,
        validate=validate.Range(min=1, max=10_000),
        metadata={
            "description": "Open tickets an agent may hold before auto-assignment "
            "skips them; null for no cap."
        },
    ),
}
TEAM_CALENDAR = fields.Dict(
    keys=fields.String(),
    allow_none=True,
    metadata={
        "description": "The team's business hours for SLA clocks, replacing the workflow SLA "
        "policy's calendar; null to use the policy's. Errors name the wrong part, e.g. "
        "`calendar.hours.mon.0`.",
        "example": {
            "timezone": "Europe/Berlin",
            "hours": {"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]]},
            "holidays": ["2026-12-25"],
        },
    },
)


class TeamSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String()
    description = fields.String()
    lead_id = fields.Integer(allow_none=True)
    assignment_policy = ASSIGNMENT["assignment_policy"]
    max_open_per_agent = ASSIGNMENT["max_open_per_agent"]
    calendar = TEAM_CALENDAR
    member_ids = fields.List(fields.Integer(), dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class TeamCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    lead_id = Id(allow_none=True, load_default=None)
    assignment_policy = ASSIGNMENT["assignment_policy"]
    max_open_per_agent = ASSIGNMENT["max_open_per_agent"]
    calendar = TEAM_CALENDAR


class TeamUpdateSchema(StrictSchema):
    name = fields.String(validate=validate.Length(min=1, max=120))
    description = fields.String(validate=validate.Length(max=5000))
    lead_id = Id(allow_none=True)
    assignment_policy = ASSIGNMENT["assignment_policy"]
    max_open_per_agent = ASSIGNMENT["max_open_per_agent"]
    calendar = TEAM_CALENDAR


class UserPageSchema(ma.Schema):
    items = fields.List(fields.Nested(UserSchema))
    next_cursor = fields.String(allow_none=True)


class TeamPageSchema(ma.Schema):
    items = fields.List(fields.Nested(TeamSchema))
    next_cursor = fields.String(allow_none=True)


class MemberSchema(StrictSchema):
    user_id = Id(required=True)


# -- organizations -------------------------------------------------------------------------------

DOMAINS = fields.List(
    fields.String(validate=validate.Length(min=1, max=253)),
    validate=validate.Length(max=50),
    metadata={
        "description": "Email domains, e.g. `example.com`; each in one organization only.",
    },
)


class OrganizationMemberSchema(ma.Schema):
    id = fields.Integer()
    name = fields.String()
    email = fields.String()
    organization_manager = fields.Boolean(data_key="manager")


class OrganizationSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String()
    domains = fields.List(fields.String())
    notes = fields.String()
    auto_join = fields.Boolean(
        metadata={"description": "New customers of its domains join it when created."}
    )
    members = fields.List(fields.Nested(OrganizationMemberSchema), dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class OrganizationListSchema(ma.Schema):
    items = fields.List(fields.Nested(OrganizationSchema))


class OrganizationCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    domains = DOMAINS
    notes = fields.String(validate=validate.Length(max=5000))
    auto_join = fields.Boolean()


class OrganizationUpdateSchema(StrictSchema):
    name = fields.String(validate=validate.Length(min=1, max=120))
    domains = DOMAINS
    notes = fields.String(validate=validate.Length(max=5000))
    auto_join = fields.Boolean()


class DeletedSchema(ma.Schema):
    id = fields.Integer()
    deleted = fields.Boolean()


class OrganizationMemberAddSchema(StrictSchema):
    user_id = Id(required=True, metadata={"description": "A customer."})
    manager = fields.Boolean(
        load_default=False,
        metadata={"description": "Sees every ticket of the organization's customers."},
    )


class PageArgsSchema(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String()


# -- tickets -------------------------------------------------------------------------------------

SUBJECT = [
    validate.Length(min=1, max=200),
    validate.Regexp(r"\s*\S", error="Must not be blank."),
]
DESCRIPTION = validate.Length(min=1, max=50_000)
CUSTOM_FIELD_VALUES = fields.Dict(
    data_key="fields",
    attribute="fields",
    keys=fields.String(validate=validate.Length(min=1, max=40)),
    values=fields.Raw(allow_none=True),
    metadata={
        "description": "Custom field values by key (GET /api/ticket-fields), typed by the "
        'field: text, long_text, date (YYYY-MM-DD) and decimal ("12.50") as strings, number '
        "as an integer, checkbox as a boolean, dropdown as an option's value, multi_select as "
        "a list of them; null or empty clears it. Customers set only customer-editable "
        "fields. A wrong one is refused: 422 naming `fields.<key>`."
    },
)
ATTACHMENT_IDS = fields.List(
    Id(),
    load_default=list,
    validate=validate.Length(max=100),
    metadata={
        "description": "Your uploads (POST /api/uploads) to send with it; at most "
        "AUTOCRM_MAX_ATTACHMENTS (10 by default)."
    },
)


class FormRef(fields.Field):
    """A request form named by its id (a number) or its key."""

    default_error_messages = {"invalid": "A request form's id or key."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID:
            return value
        if isinstance(value, str) and 0 < len(value.strip()) <= 40:
            return value.strip()
        raise self.make_error("invalid")


FORM_REF_DOC = {
    "description": "The request form (GET /api/request-forms), by id or key: its required "
    "fields must be filled (422 at `fields.<key>`) and its team takes the ticket unless staff "
    "name one. A retired form is refused (422 at `form`).",
    "oneOf": [{"type": "integer"}, {"type": "string"}],
}


class TicketCreateSchema(StrictSchema):
    subject = fields.String(required=True, validate=SUBJECT)
    description = fields.String(required=True, validate=DESCRIPTION)
    priority = PriorityField(load_default=Priority.NORMAL)
    requester_id = Id(metadata={"description": "Staff only."})
    team_id = Id(allow_none=True, metadata={"description": "Staff only."})
    assignee_id = Id(allow_none=True, metadata={"description": "Staff only."})
    tags = fields.List(
        fields.String(validate=validate.Length(min=1, max=MAX_TAG_LENGTH)),
        validate=validate.Length(max=20),
        metadata={"description": "Staff only."},
    )
    attachment_ids = ATTACHMENT_IDS
    field_values = CUSTOM_FIELD_VALUES
    form = FormRef(allow_none=True, metadata=FORM_REF_DOC)


class TicketUpdateSchema(StrictSchema):
    priority = PriorityField()
    assignee_id = Id(allow_none=True)
    team_id = Id(allow_none=True)
    tags = fields.List(
        fields.String(validate=validate.Length(min=1, max=MAX_TAG_LENGTH)),
        validate=validate.Length(max=20),
    )
    field_values = CUSTOM_FIELD_VALUES
    form = FormRef(
        allow_none=True,
        metadata={
            "description": "Staff: the ticket's request form, by id or key (null: none). Its "
            "team and fields stay as they are.",
            "oneOf": [{"type": "integer"}, {"type": "string"}],
        },
    )
    version = Id(
        metadata={"description": "The version you edited; a stale one gets 409. Or send If-Match."}
    )


SORT_CHOICES = [f"{d}{k}" for k in ("created_at", "updated_at", "priority") for d in ("", "-")]
FIELD_SORT = re.compile(r"^-?field\.[a-z][a-z0-9_]{0,39}$")


def _valid_sort(sort: str) -> None:
    if sort not in SORT_CHOICES and not FIELD_SORT.match(sort):
        raise ma.ValidationError(f"One of: {', '.join(SORT_CHOICES)}, field.<key>, -field.<key>.")


class TicketListArgsSchema(StrictSchema):
    status = fields.List(fields.String(validate=validate.Length(min=1, max=50)))
    priority = fields.List(PriorityField())
    assignee_id = Id(strict=False)
    unassigned = fields.Boolean(load_default=False)
    team_id = Id(strict=False)
    requester_id = Id(strict=False)
    organization_id = Id(
        strict=False, metadata={"description": "Tickets of this organization's customers."}
    )
    tag = fields.String(validate=validate.Length(min=1, max=MAX_TAG_LENGTH))
    q = fields.String(
        validate=validate.Length(min=1, max=MAX_SEARCH_LENGTH),
        metadata={
            "description": "Full-text search in the subject, description, every message (and "
            "internal notes, for staff), and the requester's name and email; results come best "
            "match first whatever `sort` says, each with a `snippet`, and page with their own "
            "cursor. Only the newest 1000 matching tickets are ranked; older matches follow "
            "them, newest first. 210 or #210 puts ticket #210 first."
        },
    )
    category = fields.List(
        fields.String(validate=validate.OneOf(CATEGORIES)),
        metadata={"description": "Status categories, whatever each workflow calls its states."},
    )
    team_ids = fields.List(
        Id(strict=False), metadata={"description": "Tickets of any of these teams."}
    )
    sla = fields.String(
        validate=validate.OneOf(SLA_FILTERS),
        metadata={
            "description": "The running SLA clocks: breached, due_soon (in the warning "
            "window), at_risk (either), on_track, none (no clock running)."
        },
    )
    solved_within_days = fields.Integer(
        validate=validate.Range(min=1, max=MAX_SOLVED_WITHIN_DAYS),
        metadata={"description": "Solved at most this many days ago."},
    )
    sort = fields.String(
        load_default="-created_at",
        validate=lambda sort: _valid_sort(sort),
        metadata={
            "description": f"One of {', '.join(SORT_CHOICES)}, or `field.<key>` / "
            "`-field.<key>`: by a custom field, typed (numbers as numbers, a dropdown in its "
            "options' order, a checkbox no before yes), empty values last; not long text or "
            "multi-select fields. An unknown key is refused: 422 at `sort`."
        },
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String()

    @ma.pre_load
    def _without_field_filters(self, data: Any, **kwargs: Any) -> Any:
        """``field.<key>=<value>`` are read by the view (``field_filters``), not by this
        schema (their names are the admins' own)."""
        return {k: data[k] for k in data if not k.startswith(FIELD_FILTER_PREFIX)}


FIELD_FILTER_PREFIX = "field."


class TicketListItemSchema(TicketSchema):
    snippet = fields.String(
        allow_none=True,
        metadata={
            "description": "With `q` only: the matching text as HTML, escaped, the matches in "
            "<mark>; null when only the ticket number matched."
        },
    )
    visible_fields = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        metadata={"description": "Custom field values you may see, by key (filled ones)."},
    )


class TicketPageSchema(ma.Schema):
    items = fields.List(fields.Nested(TicketListItemSchema))
    next_cursor = fields.String(
        allow_none=True,
        metadata={"description": "Pass as `cursor` for the next page; null on the last page."},
    )


class TransitionRequestSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    version = Id()


class TransitionSchema(ma.Schema):
    name = fields.String()
    label = fields.String()
    to = fields.String(attribute="dest")


# A ticket in a list (TicketSchema), one ticket, a message and a trail entry as the API, the
# realtime events and the pages all send them (autocrm.tickets.representation). Customers get
# the detail without the SLA fields.
TicketDetailSchema = StaffTicketViewSchema
TicketEventSchema = TrailEntrySchema


class MessageCreateSchema(StrictSchema):
    # The length is documented here; conversation.check_message is the rule (blank too).
    body = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_MESSAGE_LENGTH),
        metadata={
            "description": "Markdown. An internal note mentions a colleague as "
            "`@[Full Name](user:<id>)` (see `/api/tickets/{id}/mentionable`), or as "
            "`@` and their email address (stored as the former): they are "
            "notified; a mention of someone who cannot see the ticket, or in a public reply, "
            "is refused (422)."
        },
    )
    internal = fields.Boolean(load_default=False)
    attachment_ids = ATTACHMENT_IDS
    transition = fields.String(
        validate=validate.Length(min=1, max=50),
        metadata={
            "description": "A workflow transition (see `/transitions`) to fire with the "
            "message, in the same transaction: reply and set the ticket pending or solved in "
            "one step. If the workflow refuses it (409, or 422 for an unknown name), the "
            "message is not added either."
        },
    )


class TagListArgsSchema(StrictSchema):
    q = fields.String(
        load_default="",
        validate=validate.Length(max=MAX_TAG_LENGTH),
        metadata={"description": "What was typed so far: tags starting with it."},
    )
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=50))


class TagUseSchema(ma.Schema):
    tag = fields.String()
    tickets = fields.Integer(metadata={"description": "How many of your visible tickets have it."})


class MessageListArgsSchema(StrictSchema):
    after = Id(strict=False, minimum=0, metadata={"description": "Only messages with a larger id."})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=200))


class MessagePageSchema(ma.Schema):
    items = fields.List(fields.Nested(MessageSchema))
    has_more = fields.Boolean()


class FeedbackCreateSchema(StrictSchema):
    rating = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=5))
    comment = fields.String(load_default="", validate=validate.Length(max=5000))


class FeedbackSchema(ma.Schema):
    id = fields.Integer()
    ticket_id = fields.Integer()
    rating = fields.Integer()
    comment = fields.String()
    created_at = fields.DateTime()


# Each bulk action and the request field carrying its value.
BULK_VALUE_FIELD = {"assign": "assignee_id", "set_priority": "priority", "transition": "transition"}


class BulkRequestSchema(StrictSchema):
    ticket_ids = fields.List(Id(), required=True, validate=validate.Length(min=1, max=500))
    action = fields.String(required=True, validate=validate.OneOf(BULK_VALUE_FIELD))
    assignee_id = Id(allow_none=True)
    priority = PriorityField()
    transition = fields.String(validate=validate.Length(min=1, max=50))

    @ma.validates_schema
    def check_action_value(self, data: dict[str, Any], **_: Any) -> None:
        needed = BULK_VALUE_FIELD[data["action"]]
        if needed not in data:
            raise ma.ValidationError(f"Required for action {data['action']!r}.", needed)


class BulkResultSchema(ma.Schema):
    ticket_id = fields.Integer()
    ok = fields.Boolean()
    status = fields.Integer()
    message = fields.String()
    ticket = fields.Nested(TicketSchema, allow_none=True)


class BulkResponseSchema(ma.Schema):
    results = fields.List(fields.Nested(BulkResultSchema))
    succeeded = fields.Integer()
    failed = fields.Integer()


# -- knowledge base ------------------------------------------------------------------------------

ARTICLE_TITLE = [
    validate.Length(min=1, max=200),
    validate.Regexp(r"\s*\S", error="Must not be blank."),
]
ARTICLE_BODY = validate.Length(min=1, max=100_000)
TAGS = fields.List(
    fields.String(validate=validate.Length(max=50)), validate=validate.Length(max=20)
)


class KbCategorySchema(ma.Schema):
    id = fields.Integer()
    name = fields.String()
    position = fields.Integer()


class KbCategoryCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    position = fields.Integer(
        load_default=0, strict=True, validate=validate.Range(min=0, max=MAX_INT32)
    )


class KbCategoryUpdateSchema(StrictSchema):
    name = fields.String(validate=validate.Length(min=1, max=100))
    position = fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_INT32))


class ArticleSummarySchema(ma.Schema):
    id = fields.Integer()
    title = fields.String()
    category_id = fields.Integer(allow_none=True)
    status = fields.Enum(ArticleStatus, by_value=True)
    visibility = fields.Enum(ArticleVisibility, by_value=True)
    tags = fields.List(fields.String())
    author_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    published_at = fields.DateTime(allow_none=True)


class ArticleSchema(ArticleSummarySchema):
    body = fields.String(metadata={"description": "Markdown."})
    body_html = fields.Method(
        "_body_html", metadata={"description": "The body rendered to sanitized HTML."}
    )

    attachments = fields.List(
        fields.Nested(AttachmentSchema),
        metadata={"description": "Its files; link an image in the body as ![name](page_url)."},
    )

    def _body_html(self, article: Any) -> str:
        return markdown.render(article.body)


class ArticleSearchResultSchema(ArticleSummarySchema):
    snippet = fields.String(
        allow_none=True,
        metadata={"description": "HTML: escaped text with the matches in <mark>; null without q."},
    )
    score = fields.Float(metadata={"description": "Relevance, higher is better; 0 without q."})


class ArticleSearchPageSchema(ma.Schema):
    items = fields.List(fields.Nested(ArticleSearchResultSchema))


class ArticleListArgsSchema(StrictSchema):
    q = fields.String(
        validate=validate.Length(max=500),
        metadata={"description": "Words to search for (all must match); any text is accepted."},
    )
    category_id = Id(strict=False)
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=50))


class ArticleCreateSchema(StrictSchema):
    title = fields.String(required=True, validate=ARTICLE_TITLE)
    body = fields.String(required=True, validate=ARTICLE_BODY)
    category_id = Id(allow_none=True, load_default=None)
    visibility = fields.Enum(
        ArticleVisibility, by_value=True, load_default=ArticleVisibility.PUBLIC
    )
    status = fields.Enum(ArticleStatus, by_value=True, load_default=ArticleStatus.DRAFT)
    tags = TAGS
    attachment_ids = ATTACHMENT_IDS


class ArticleUpdateSchema(StrictSchema):
    title = fields.String(validate=ARTICLE_TITLE)
    body = fields.String(validate=ARTICLE_BODY)
    category_id = Id(allow_none=True)
    visibility = fields.Enum(ArticleVisibility, by_value=True)
    status = fields.Enum(
        ArticleStatus, by_value=True, metadata={"description": "published publishes the article."}
    )
    tags = TAGS
    attachment_ids = fields.List(
        Id(),
        validate=validate.Length(max=100),
        metadata={"description": "More of your uploads to add to the article."},
    )
    revision = fields.Integer(
        load_only=True,
        validate=validate.Range(min=1, max=MAX_INT32),
        metadata={"description": "The revision you edited (or send it as If-Match)."},
    )


class ArticleDeletedSchema(ma.Schema):
    id = fields.Integer()
    deleted = fields.Boolean()


class ArticleRevisionSchema(ma.Schema):
    id = fields.Integer()
    number = fields.Integer()
    title = fields.String()
    body = fields.String()
    category_id = fields.Integer(
        allow_none=True,
        metadata={"description": "Null without a category, or when it was deleted since."},
    )
    category_name = fields.String(
        allow_none=True, metadata={"description": "The category's name when this was saved."}
    )
    visibility = fields.Enum(ArticleVisibility, by_value=True)
    tags = fields.List(fields.String())
    author_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()


class VoteRequestSchema(StrictSchema):
    helpful = fields.Boolean(required=True, truthy={True}, falsy={False})


class VoteTallySchema(ma.Schema):
    article_id = fields.Integer()
    helpful = fields.Boolean(metadata={"description": "Your vote."})
    helpful_count = fields.Integer()
    not_helpful_count = fields.Integer()


class SuggestionOpenedSchema(StrictSchema):
    article_id = Id(required=True)
    query = fields.String(load_default="", validate=validate.Length(max=200))


class SuggestionEventSchema(ma.Schema):
    id = fields.Integer()
    article_id = fields.Integer()
    query = fields.String()
    opened_at = fields.DateTime()


# -- reports -------------------------------------------------------------------------------------

MAX_REPORT_DAYS = 366
BUSINESS_SECONDS = (
    "Business seconds (the team's business hours, else the workflow SLA policy's calendar); "
    "null when there is nothing to measure."
)


class TeamReportArgsSchema(StrictSchema):
    start = fields.Date(
        metadata={"description": "First day (UTC), included; default: 29 days before end."}
    )
    end = fields.Date(metadata={"description": "Last day (UTC), included; default: today."})
    team_id = Id(strict=False, metadata={"description": "Only this team."})
    group_by = fields.String(
        validate=validate.Length(min=1, max=50),
        metadata={
            "description": "`field.<key>` of a dropdown field: each team's created, solved and "
            "open tickets per option too (`by_field`). Another field: 422 at `group_by`."
        },
    )

    @ma.post_load
    def default_and_check_period(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        end = data.setdefault("end", datetime.now(UTC).date())
        start = data.setdefault("start", end - timedelta(days=29))
        if end < start:
            raise ma.ValidationError("Must not be before start.", "end")
        if (end - start).days + 1 > MAX_REPORT_DAYS:
            raise ma.ValidationError(f"The period may span at most {MAX_REPORT_DAYS} days.", "end")
        return data


class BacklogDaySchema(ma.Schema):
    day = fields.Date()
    open = fields.Integer(metadata={"description": "Tickets open at the end of the day (UTC)."})


class AgentReportSchema(ma.Schema):
    user_id = fields.Integer()
    name = fields.String()
    open_assigned = fields.Integer(
        metadata={"description": "Open tickets of the team assigned to the agent now."}
    )
    solved = fields.Integer(metadata={"description": "Tickets of the team they solved."})
    first_response_seconds_p50 = fields.Float(
        allow_none=True, metadata={"description": BUSINESS_SECONDS}
    )


class FieldGroupSchema(ma.Schema):
    value = fields.String(
        allow_none=True, metadata={"description": "The option's value; null: no value."}
    )
    label = fields.String()
    created = fields.Integer()
    solved = fields.Integer()
    backlog_now = fields.Integer()


class GroupBySchema(ma.Schema):
    key = fields.String()
    label = fields.String()


class TeamReportSchema(ma.Schema):
    team_id = fields.Integer()
    team_name = fields.String()
    created = fields.Integer(metadata={"description": "Tickets created in the period."})
    solved = fields.Integer(metadata={"description": "Tickets solved in the period."})
    backlog_now = fields.Integer(metadata={"description": "Tickets not solved or closed, now."})
    backlog_trend = fields.List(fields.Nested(BacklogDaySchema))
    first_response_seconds_p50 = fields.Float(
        allow_none=True, metadata={"description": BUSINESS_SECONDS}
    )
    first_response_seconds_p90 = fields.Float(
        allow_none=True, metadata={"description": BUSINESS_SECONDS}
    )
    resolution_seconds_p50 = fields.Float(
        allow_none=True, metadata={"description": BUSINESS_SECONDS}
    )
    resolution_seconds_p90 = fields.Float(
        allow_none=True, metadata={"description": BUSINESS_SECONDS}
    )
    sla_clocks_stopped = fields.Integer(
        metadata={"description": "SLA clocks of the team's tickets stopped in the period."}
    )
    sla_compliance_percent = fields.Float(
        allow_none=True, metadata={"description": "Share of those clocks never breached, in %."}
    )
    csat_ratings = fields.Integer(metadata={"description": "Ratings of tickets solved."})
    csat_average = fields.Float(allow_none=True, metadata={"description": "Average rating 1-5."})
    csat_response_rate = fields.Float(
        allow_none=True, metadata={"description": "Ratings / tickets solved (0-1)."}
    )
    agents = fields.List(fields.Nested(AgentReportSchema))
    by_field = fields.List(
        fields.Nested(FieldGroupSchema),
        metadata={"description": "With `group_by`: per option, in the options' order."},
    )


class TeamReportPageSchema(ma.Schema):
    start = fields.Date()
    end = fields.Date()
    group_by = fields.Nested(GroupBySchema, metadata={"description": "With `group_by`."})
    teams = fields.List(fields.Nested(TeamReportSchema))


# -- mailboxes (the email channel) ----------------------------------------------------------------

IMAP_SECURITY = fields.String(
    validate=validate.OneOf(["ssl", "starttls", "none"]),
    metadata={"description": "ssl (port 993), starttls (143), or none (tests only)."},
)


class MailboxSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(metadata={"description": "Names it in `flask mail-in` and the webhook."})
    address = fields.String(metadata={"description": "The address customers write to."})
    team_id = fields.Integer(allow_none=True)
    active = fields.Boolean()
    plus_addressing = fields.Boolean(
        metadata={"description": "Replies ask to be answered at address+<signed token>."}
    )
    imap_host = fields.String(allow_none=True)
    imap_port = fields.Integer(allow_none=True)
    imap_security = fields.Enum(ImapSecurity, by_value=True)
    imap_username = fields.String(allow_none=True)
    imap_password_set = fields.Function(lambda m: m.imap_password_encrypted is not None)
    imap_folder = fields.String()
    imap_processed_folder = fields.String(
        allow_none=True, metadata={"description": "Null: processed messages are deleted."}
    )
    last_polled_at = fields.DateTime(allow_none=True)
    last_poll_error = fields.String(allow_none=True)
    created_at = fields.DateTime(dump_only=True)


class MailboxCreatedSchema(ma.Schema):
    mailbox = fields.Nested(MailboxSchema)
    webhook_secret = fields.String(
        metadata={"description": "Shown this once: what the provider's webhook must send."}
    )


class MailboxListSchema(ma.Schema):
    items = fields.List(fields.Nested(MailboxSchema))


class MailboxWriteSchema(StrictSchema):
    name = fields.String(validate=validate.Length(min=1, max=60))
    address = fields.String(validate=validate.Length(min=3, max=254))
    team_id = Id(allow_none=True)
    active = fields.Boolean()
    plus_addressing = fields.Boolean()
    imap_host = fields.String(allow_none=True, validate=validate.Length(max=253))
    imap_port = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=65535))
    imap_security = IMAP_SECURITY
    imap_username = fields.String(allow_none=True, validate=validate.Length(max=254))
    imap_password = fields.String(
        load_only=True,
        validate=validate.Length(max=500),
        metadata={"description": "Stored encrypted; never shown. Omit to keep it."},
    )
    imap_folder = fields.String(validate=validate.Length(max=200))
    imap_processed_folder = fields.String(allow_none=True, validate=validate.Length(max=200))


class MailboxCreateSchema(MailboxWriteSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=60))
    address = fields.String(required=True, validate=validate.Length(min=3, max=254))


class MailboxTestSchema(ma.Schema):
    ok = fields.Boolean()
    message = fields.String(metadata={"description": "What the server answered."})


class WebhookSecretSchema(ma.Schema):
    webhook_secret = fields.String()


class InboundEmailSchema(ma.Schema):
    id = fields.Integer()
    mailbox_id = fields.Integer()
    message_id = fields.String(allow_none=True)
    sender = fields.String()
    subject = fields.String()
    via = fields.String(metadata={"description": "imap, pipe or webhook."})
    status = fields.Function(lambda e: e.status.value)
    reason = fields.String()
    ticket_id = fields.Integer(allow_none=True)
    raw_size = fields.Integer()
    received_at = fields.DateTime()


class InboundEmailPageSchema(ma.Schema):
    items = fields.List(fields.Nested(InboundEmailSchema))
    next_cursor = fields.String(allow_none=True)


class InboundEmailListArgsSchema(PageArgsSchema):
    status = fields.String(
        load_default="failed",
        validate=validate.OneOf(["processed", "ignored", "failed", "discarded", "all"]),
    )


class FollowerSchema(ma.Schema):
    id = fields.Integer()
    name = fields.String()
    role = fields.String(metadata={"description": "customer, agent or admin."})
    email = fields.String(
        allow_none=True,
        metadata={"description": "Null for a staff follower when a customer asks."},
    )


class FollowerAddSchema(StrictSchema):
    """Who is to follow: ``user_id`` (staff only) or ``email`` (a colleague; a new customer
    is created for an unknown address, named ``name``)."""

    user_id = Id(metadata={"description": "Staff only: an existing user."})
    email = fields.String(validate=validate.Length(min=1, max=254))
    name = fields.String(load_default="", validate=validate.Length(max=120))


class FollowerRemovedSchema(ma.Schema):
    ticket_id = fields.Integer()
    user_id = fields.Integer()
    deleted = fields.Boolean()


class TicketMergeSchema(StrictSchema):
    into = Id(required=True, metadata={"description": "The ticket to merge this one into."})


class TicketLinkAddSchema(StrictSchema):
    linked_id = Id(required=True, metadata={"description": "The ticket to link this one to."})


class LinkedTicketSchema(ma.Schema):
    id = fields.Integer()
    subject = fields.String()
    status = fields.String()
    category = fields.String()


class TicketLinkRemovedSchema(ma.Schema):
    ticket_id = fields.Integer()
    linked_id = fields.Integer()
    deleted = fields.Boolean()


# -- outgoing webhooks ----------------------------------------------------------------------------

WEBHOOK_EVENT_KINDS = list(EVENT_KINDS)


class WebhookSubscriptionSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    url = fields.String(metadata={"description": "Where deliveries are POSTed (https)."})
    description = fields.String()
    event_kinds = fields.List(
        fields.String(validate=validate.OneOf(WEBHOOK_EVENT_KINDS)),
        metadata={"description": "The event kinds delivered."},
    )
    team_id = fields.Integer(
        allow_none=True, metadata={"description": "Only this team's tickets; null: all."}
    )
    include_internal = fields.Boolean(
        metadata={"description": "Deliver internal notes too (message.created)."}
    )
    active = fields.Boolean(metadata={"description": "False: paused, nothing is delivered."})
    consecutive_failures = fields.Integer(dump_only=True)
    paused_reason = fields.String(allow_none=True, dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class WebhookSubscriptionListSchema(ma.Schema):
    items = fields.List(fields.Nested(WebhookSubscriptionSchema))


class WebhookSubscriptionWriteSchema(StrictSchema):
    url = fields.String(validate=validate.Length(min=1, max=2000))
    description = fields.String(validate=validate.Length(max=200))
    event_kinds = fields.List(
        fields.String(validate=validate.OneOf(WEBHOOK_EVENT_KINDS)),
        validate=validate.Length(min=1, max=len(WEBHOOK_EVENT_KINDS)),
    )
    team_id = Id(allow_none=True)
    include_internal = fields.Boolean()
    active = fields.Boolean(metadata={"description": "False pauses it; true resumes it."})


class WebhookSubscriptionCreateSchema(WebhookSubscriptionWriteSchema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    event_kinds = fields.List(
        fields.String(validate=validate.OneOf(WEBHOOK_EVENT_KINDS)),
        required=True,
        validate=validate.Length(min=1, max=len(WEBHOOK_EVENT_KINDS)),
    )


class WebhookSubscriptionCreatedSchema(ma.Schema):
    webhook = fields.Nested(WebhookSubscriptionSchema)
    secret = fields.String(
        metadata={"description": "Shown this once: verifies X-AutoCRM-Signature."}
    )


class WebhookSigningSecretSchema(ma.Schema):
    secret = fields.String(metadata={"description": "Shown this once."})


class WebhookDeliverySchema(ma.Schema):
    id = fields.Integer()
    subscription_id = fields.Integer()
    event_id = fields.String()
    event_kind = fields.String()
    ticket_id = fields.Integer(allow_none=True)
    status = fields.Function(
        lambda d: d.status.value, metadata={"enum": ["pending", "delivered", "failed"]}
    )
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_response_ms = fields.Integer(allow_none=True)
    last_response_body = fields.String(
        allow_none=True, metadata={"description": "The answer's first kilobyte."}
    )
    last_error = fields.String(
        allow_none=True, metadata={"description": "Why no answer came (refused, timeout...)."}
    )
    created_at = fields.DateTime()
    last_attempt_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)


class WebhookDeliveryDetailSchema(WebhookDeliverySchema):
    payload = fields.Dict(metadata={"description": "The document sent (WebhookEvent)."})


class WebhookDeliveryPageSchema(ma.Schema):
    items = fields.List(fields.Nested(WebhookDeliverySchema))
    next_cursor = fields.String(allow_none=True)


class WebhookDeliveryListArgsSchema(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(validate=validate.Length(max=200))


class WebhookEventDataSchema(ma.Schema):
    ticket = fields.Nested(
        StaffTicketViewSchema,
        allow_none=True,
        metadata={"description": "The ticket as the API shows it to staff (null in tests)."},
    )
    event = fields.Dict(metadata={"description": "The event's own fields (changes, states...)."})
    message = fields.Nested(
        MessageSchema, allow_none=True, metadata={"description": "message.created only."}
    )


class WebhookEventSchema(ma.Schema):
    """The JSON document POSTed to a webhook (schema_version 1), signed in
    X-AutoCRM-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""

    id = fields.String(metadata={"description": "The event's id: the same on every retry."})
    type = fields.String(
        metadata={
            "enum": [*WEBHOOK_EVENT_KINDS, "webhook.test", "workflow.rule"],
            "description": "workflow.rule: a rule's call_webhook action (event: rule, "
            "workflow_version).",
        }
    )
    created_at = fields.DateTime()
    schema_version = fields.Integer(metadata={"enum": [1]})
    data = fields.Nested(WebhookEventDataSchema)


# -- macros ------------------------------------------------------------------------------------

MACRO_TAGS = fields.List(
    fields.String(validate=validate.Length(min=1, max=MAX_TAG_LENGTH)),
    validate=validate.Length(max=20),
)


class MacroAssigneeField(fields.Field):
    """An agent's id, ``"me"`` (whoever applies the macro) or null (unassign)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if value is None or value == "me":
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID:
            return value
        raise ma.ValidationError('An agent\'s id, "me" or null.')


class MacroActionsSchema(StrictSchema):
    priority = fields.String(validate=validate.OneOf([p.label for p in Priority]))
    team_id = Id(metadata={"description": "Move the ticket to this team."})
    assignee_id = MacroAssigneeField(
        allow_none=True,
        metadata={
            "description": 'An agent\'s id, "me" (whoever applies the macro) or null (unassign).',
            "oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": ["me"]}],
            "nullable": True,
        },
    )
    add_tags = MACRO_TAGS
    remove_tags = MACRO_TAGS
    transition = fields.String(
        validate=validate.Length(min=1, max=50),
        metadata={"description": "A workflow transition's name, e.g. `wait_on_customer`."},
    )


MACRO_SCOPES = ["personal", "team", "global"]


class MacroSchema(ma.Schema):
    id = fields.Integer()
    title = fields.String()
    body = fields.String(metadata={"description": "The reply, with placeholders."})
    scope = fields.Function(lambda m: m.scope.value, metadata={"enum": MACRO_SCOPES})
    team_id = fields.Integer(allow_none=True)
    owner_id = fields.Integer(allow_none=True)
    actions = fields.Nested(MacroActionsSchema)
    text_only = fields.Boolean()
    usage_count = fields.Integer()
    last_used_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class MacroListSchema(ma.Schema):
    items = fields.List(fields.Nested(MacroSchema))


class MacroUpdateSchema(StrictSchema):
    title = fields.String(validate=validate.Length(min=1, max=120))
    body = fields.String(
        validate=validate.Length(max=20_000),
        metadata={
            "description": "The public reply; placeholders {{ticket.number}}, "
            "{{ticket.subject}}, {{requester.name}}, {{requester.first_name}}, "
            "{{requester.email}}, {{agent.name}}, {{agent.first_name}} are filled in as text."
        },
    )
    scope = fields.String(
        validate=validate.OneOf(MACRO_SCOPES),
        metadata={
            "description": "personal: yours alone; team: `team_id`'s (one of your teams); "
            "global: every agent's (admins)."
        },
    )
    team_id = Id(allow_none=True)
    actions = fields.Nested(
        MacroActionsSchema, metadata={"description": "The changes; a key left out: no change."}
    )


class MacroCreateSchema(MacroUpdateSchema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=120))
    scope = fields.String(
        validate=validate.OneOf(MACRO_SCOPES),
        metadata={"description": "Left out: team with a `team_id`, else personal."},
    )


class MacroChangeSchema(ma.Schema):
    field = fields.String()
    description = fields.String()
    possible = fields.Boolean()
    reason = fields.String(metadata={"description": "Why it is not possible now."})


class MacroPreviewSchema(ma.Schema):
    macro_id = fields.Function(lambda p: p.macro.id)
    ticket_id = fields.Function(lambda p: p.ticket.id)
    version = fields.Function(
        lambda p: p.ticket.version,
        metadata={"description": "The ticket's version: send it to apply."},
    )
    body = fields.String(metadata={"description": "The reply as it will be sent."})
    text_only = fields.Function(lambda p: p.macro.text_only)
    applicable = fields.Boolean()
    changes = fields.List(fields.Nested(MacroChangeSchema))


class MacroApplySchema(StrictSchema):
    version = Id(metadata={"description": "The ticket's version you previewed; or send If-Match."})
    body = fields.String(
        validate=validate.Length(min=1, max=MAX_MESSAGE_LENGTH),
        metadata={"description": "An edited reply to send instead of the macro's text."},
    )


# -- queue views ---------------------------------------------------------------------------------

VIEW_SCOPES = ["personal", "team", "global"]


class ViewSchema(ma.Schema):
    id = fields.String(
        metadata={"description": "A built-in view's key (my_unsolved, ...) or a saved view's id."}
    )
    name = fields.String()
    builtin = fields.Boolean()
    scope = fields.String(metadata={"enum": ["builtin", *VIEW_SCOPES]})
    team_id = fields.Integer(allow_none=True)
    owner_id = fields.Integer(allow_none=True)
    filters = fields.Dict(
        metadata={"description": "As written to a view (ViewFilters): the list's parameters."}
    )
    sort = fields.String(
        metadata={"description": f"One of {', '.join(VIEW_SORTS)}, or `(-)field.<key>`."}
    )
    position = fields.Integer()
    columns = fields.List(
        fields.String(), metadata={"description": "Custom field keys the queue shows as columns."}
    )
    editable = fields.Boolean(metadata={"description": "Whether you may change or delete it."})
    count = fields.Integer(
        allow_none=True,
        metadata={
            "description": "Tickets in it now (with `counts=1`). A view that searches text "
            "stops counting above 1000: then `count` is 1000 and `count_more` is true."
        },
    )
    count_more = fields.Boolean(
        metadata={
            "description": "Whether it holds more tickets than `count` (a text search, "
            'counted up to 1000): show it as "1000+".'
        }
    )
    created_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)


class ViewListSchema(ma.Schema):
    items = fields.List(fields.Nested(ViewSchema))
    default = fields.String(metadata={"description": "The view the agent queue opens on."})


class ViewListArgsSchema(StrictSchema):
    counts = fields.Boolean(
        load_default=False, metadata={"description": "Count each view's tickets."}
    )


class ViewWriteSchema(StrictSchema):
    name = fields.String(validate=validate.Length(min=1, max=80))
    scope = fields.String(validate=validate.OneOf(VIEW_SCOPES))
    team_id = Id(allow_none=True, metadata={"description": "A team view's team."})
    filters = fields.Nested(
        ViewFiltersSchema,
        metadata={"description": "The query parameters GET /api/tickets takes."},
    )
    sort = fields.String(
        validate=validate.Length(min=1, max=60),
        metadata={"description": f"One of {', '.join(VIEW_SORTS)}, or `(-)field.<key>`."},
    )
    position = fields.Integer(validate=validate.Range(min=0, max=10_000))
    columns = fields.List(
        fields.String(validate=validate.Length(min=1, max=40)),
        metadata={"description": "Custom field keys to show as queue columns, in order."},
    )


class ViewCreateSchema(ViewWriteSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=80))


class ViewTicketsArgsSchema(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String()


# -- custom ticket fields ------------------------------------------------------------------------

FIELD_TYPES = ["text", "long_text", "number", "decimal", "date", "checkbox", "dropdown",
               "multi_select"]  # fmt: skip
FIELD_VISIBILITIES = ["staff", "customer_visible", "customer_editable"]


class FieldOptionSchema(StrictSchema):
    value = fields.String(required=True, validate=validate.Length(min=1, max=100))
    label = fields.String(validate=validate.Length(max=100))
    retired = fields.Boolean(
        load_default=False,
        metadata={"description": "Offered no more; tickets that hold it keep it."},
    )


class TicketFieldSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    key = fields.String(
        metadata={"description": "Names the value in a ticket's `fields`; fixed once made."}
    )
    label = fields.String()
    type = fields.Function(lambda f: f.type.value, metadata={"enum": FIELD_TYPES})
    options = fields.List(
        fields.Nested(FieldOptionSchema),
        metadata={"description": "Dropdown and multi-select: the options, in order."},
    )
    help_text = fields.String()
    visibility = fields.Function(
        lambda f: f.visibility.value, metadata={"enum": FIELD_VISIBILITIES}
    )
    required_to_solve = fields.Boolean(
        metadata={"description": "A ticket cannot be solved while it is empty (409)."}
    )
    position = fields.Integer()
    active = fields.Boolean()
    created_at = fields.DateTime(dump_only=True)


class TicketFieldListSchema(ma.Schema):
    items = fields.List(fields.Nested(TicketFieldSchema))


class TicketFieldListArgsSchema(StrictSchema):
    include_inactive = fields.Boolean(
        load_default=False, metadata={"description": "Admins: the deactivated fields too."}
    )


class TicketFieldUpdateSchema(StrictSchema):
    label = fields.String(validate=validate.Length(min=1, max=100))
    options = fields.List(
        fields.Nested(FieldOptionSchema),
        validate=validate.Length(max=500),
        metadata={
            "description": "The whole list, in the order wanted. Removing an option a ticket "
            "holds is refused (422 at `options`): retire it instead."
        },
    )
    help_text = fields.String(validate=validate.Length(max=1000))
    visibility = fields.String(validate=validate.OneOf(FIELD_VISIBILITIES))
    required_to_solve = fields.Boolean()
    active = fields.Boolean(metadata={"description": "False hides it from forms and writes."})


class TicketFieldCreateSchema(TicketFieldUpdateSchema):
    key = fields.String(
        required=True,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "A lowercase letter, then lowercase letters, digits and _."},
    )
    label = fields.String(required=True, validate=validate.Length(min=1, max=100))
    type = fields.String(required=True, validate=validate.OneOf(FIELD_TYPES))


class TicketFieldOrderSchema(StrictSchema):
    field_ids = fields.List(Id(), required=True, validate=validate.Length(min=1, max=500))


# -- request forms -------------------------------------------------------------------------------


class RequestFormItemSchema(StrictSchema):
    key = fields.String(
        required=True,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "A ticket field's key."},
    )
    required = fields.Boolean(load_default=False)


class RequestFormSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    key = fields.String(metadata={"description": "Names the form in `form`; fixed once made."})
    name = fields.String()
    description = fields.String()
    active = fields.Boolean(metadata={"description": "False: retired, offered no more."})
    position = fields.Integer()
    team_id = fields.Integer(
        allow_none=True, metadata={"description": "The team its new tickets go to."}
    )
    team_name = fields.String(allow_none=True)
    fields_ = fields.List(
        fields.Nested(RequestFormItemSchema),
        data_key="fields",
        attribute="fields",
        metadata={
            "description": "The fields asked, in order (customers get those they are asked: "
            "the customer-editable ones)."
        },
    )
    created_at = fields.DateTime(dump_only=True)


class RequestFormListSchema(ma.Schema):
    items = fields.List(fields.Nested(RequestFormSchema))


class RequestFormListArgsSchema(StrictSchema):
    include_retired = fields.Boolean(
        load_default=False, metadata={"description": "Admins: the retired forms too."}
    )


class RequestFormUpdateSchema(StrictSchema):
    name = fields.String(validate=validate.Length(min=1, max=100))
    description = fields.String(validate=validate.Length(max=1000))
    active = fields.Boolean()
    position = fields.Integer(validate=validate.Range(min=0, max=10_000))
    team_id = Id(allow_none=True)
    fields_ = fields.List(
        fields.Nested(RequestFormItemSchema),
        data_key="fields",
        attribute="fields",
        validate=validate.Length(max=100),
        metadata={"description": "The whole list, in the order asked."},
    )


class RequestFormCreateSchema(RequestFormUpdateSchema):
    key = fields.String(
        required=True,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "A lowercase letter, then lowercase letters, digits and _."},
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
