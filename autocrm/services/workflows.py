"""Which workflow version a ticket runs on, and its compiled machine."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from autocrm.extensions import db
from autocrm.models import Ticket, Workflow, WorkflowVersion
from workflows import CompiledWorkflow, compiled, default_definition, dump_definition
from workflows import load_definition as validate_definition

DEFAULT_WORKFLOW = "default"


def current_version(workflow_name: str = DEFAULT_WORKFLOW) -> WorkflowVersion:
    """The newest published version new tickets pin; installs the bundled default if absent."""
    version = db.session.scalar(
        select(WorkflowVersion)
        .join(Workflow)
        .where(Workflow.name == workflow_name)
        .order_by(WorkflowVersion.number.desc())
        .limit(1)
    )
    if version is None and workflow_name == DEFAULT_WORKFLOW:
        version = _install_default()
    if version is None:
        raise LookupError(f"no workflow named {workflow_name!r}")
    return version


def _install_default() -> WorkflowVersion:
    definition = dump_definition(validate_definition(default_definition()))
    # A savepoint: if another process installs it at the same moment, use theirs.
    try:
        with db.session.begin_nested():
            workflow = Workflow(name=DEFAULT_WORKFLOW, description=definition["description"])
            version = WorkflowVersion(workflow=workflow, number=1, definition=definition)
            db.session.add(version)
    except IntegrityError:
        existing = db.session.scalar(
            select(WorkflowVersion).join(Workflow).where(Workflow.name == DEFAULT_WORKFLOW)
        )
        if existing is None:
            raise
        return existing
    return version


def engine_for_version(version_id: int) -> CompiledWorkflow:
    """The compiled machine of a version; the definition is read once per process."""
    return compiled(
        version_id,
        lambda: db.session.scalar(
            select(WorkflowVersion.definition).where(WorkflowVersion.id == version_id)
        ),
    )


def engine_for(ticket: Ticket) -> CompiledWorkflow:
    return engine_for_version(ticket.workflow_version_id)
