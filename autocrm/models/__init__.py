"""The data model, one module per domain area; import models from here."""

from autocrm.models.outbox import OutboxEvent
from autocrm.models.tickets import Feedback, Message, Priority, Ticket, TicketEvent, TicketTag
from autocrm.models.types import utcnow
from autocrm.models.users import Role, Team, TeamMembership, User
from autocrm.models.workflows import Workflow, WorkflowVersion

__all__ = [
    "Feedback",
    "Message",
    "OutboxEvent",
    "Priority",
    "Role",
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
