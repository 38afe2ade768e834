"""AutoCRM: a workflow-engine-centred helpdesk. ``create_app`` builds the Flask app."""

from autocrm.app import create_app

__all__ = ["create_app"]
