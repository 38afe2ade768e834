"""The data model, one module per domain area; import models from here."""

from autocrm.models.audit import AdminAuditEntry
from autocrm.models.automation import RuleFiring, SlaClock
from autocrm.models.canned import CannedResponse
from autocrm.models.kb import (
    Article,
    ArticleRevision,
    ArticleStatus,
    ArticleTag,
    ArticleVisibility,
    ArticleVote,
    KbCategory,
    KbSuggestionEvent,
)
from autocrm.models.notifications import (
    NOTIFICATION_KINDS,
    EmailMessage,
    Notification,
    NotificationPreference,
)
from autocrm.models.outbox import OutboxEvent
from autocrm.models.tickets import Feedback, Message, Priority, Ticket, TicketEvent, TicketTag
from autocrm.models.types import utcnow
from autocrm.models.users import AssignmentPolicy, Role, Team, TeamMembership, User
from autocrm.models.workflows import Workflow, WorkflowVersion

__all__ = [
    "NOTIFICATION_KINDS",
    "AdminAuditEntry",
    "Article",
    "ArticleRevision",
    "ArticleStatus",
    "ArticleTag",
    "ArticleVisibility",
    "ArticleVote",
    "AssignmentPolicy",
    "CannedResponse",
    "EmailMessage",
    "Feedback",
    "KbCategory",
    "KbSuggestionEvent",
    "Message",
    "Notification",
    "NotificationPreference",
    "OutboxEvent",
    "Priority",
    "Role",
    "RuleFiring",
    "SlaClock",
    "Team",
    "TeamMembership",
    "Ticket",
    "TicketEvent",
    "TicketTag",
    "User",
    "Workflow",
    "WorkflowVersion",
    "utcnow",
]
