"""Which workflow version a ticket runs on, and its compiled machine."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from autocrm.engine.models import Workflow, WorkflowVersion
from autocrm.extensions import db
from autocrm.tickets.models import Ticket
from workflows import CompiledWorkflow, compiled, default_definition, dump_definition
from workflows import load_definition as validate_definition

DEFAULT_WORKFLOW = "default"


def current_version() -> WorkflowVersion:
    """The version new tickets pin: the newest of the default workflow. Installs the bundled
    default workflow on first use."""
    version = db.session.scalar(
        select(WorkflowVersion)
        .join(Workflow)
        .where(Workflow.is_default.is_(True))
        .order_by(WorkflowVersion.number.desc())
        .limit(1)
    )
    return version if version is not None else _install_default()


def current_version_id() -> int:
    """The id of ``current_version()``, read alone: its definition (a large JSON document)
    is read and compiled once per process, by ``engine_for_version``. Versions are immutable,
    so only which one is current needs reading, and a publish elsewhere is seen at once."""
    version_id = db.session.scalar(
        select(WorkflowVersion.id)
        .join(Workflow)
        .where(Workflow.is_default.is_(True))
        .order_by(WorkflowVersion.number.desc())
        .limit(1)
    )
    return version_id if version_id is not None else _install_default().id


def _install_default() -> WorkflowVersion:
    definition = dump_definition(validate_definition(default_definition()))
    # A savepoint: if another process installs it at the same moment, use theirs.
    try:
        with db.session.begin_nested():
            workflow = Workflow(
                name=DEFAULT_WORKFLOW, description=definition["description"], is_default=True
            )
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
        lambda: db.session.execute(
            select(WorkflowVersion.definition).where(WorkflowVersion.id == version_id)
        ).scalar_one(),
    )


def engine_for(ticket: Ticket) -> CompiledWorkflow:
    return engine_for_version(ticket.workflow_version_id)


def version_numbers(version_ids: set[int]) -> dict[int, int]:
    """Version id -> its number within its workflow (the trail stores ids)."""
    if not version_ids:
        return {}
    rows = db.session.execute(
        select(WorkflowVersion.id, WorkflowVersion.number).where(
            WorkflowVersion.id.in_(version_ids)
        )
    )
    return {row.id: row.number for row in rows}
