"""AutoCRM: a workflow-engine-centred helpdesk. ``create_app`` builds the Flask app.

``create_app`` is imported on first use, not with the package: ``python -m autocrm.server``
must monkey-patch (eventlet/gevent) before anything imports socket, ssl, threading or redis,
and Python imports this package before that module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autocrm.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from autocrm.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
