"""The workflow engine: definition format, validation and the compiled state machine."""

from workflows.definition import default_definition, dump_definition, load_definition
from workflows.engine import (
    CompiledWorkflow,
    TransitionNotAllowed,
    TransitionOutcome,
    TransitionSpec,
    UnknownTransition,
    WorkflowError,
    compiled,
)

__all__ = [
    "CompiledWorkflow",
    "TransitionNotAllowed",
    "TransitionOutcome",
    "TransitionSpec",
    "UnknownTransition",
    "WorkflowError",
    "compiled",
    "default_definition",
    "dump_definition",
    "load_definition",
]
