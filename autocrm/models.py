"""Every mapped class, imported so that the metadata is complete and relationships named by
string resolve: ``create_app`` imports this before anything touches the database, and Alembic
(``alembic check``, autogenerate) compares the migrations with it.

Domain code imports its models from its domain (``autocrm.tickets.models`` ...), not from here.
"""

import autocrm.audit.models
import autocrm.automation.models
import autocrm.engine.models
import autocrm.events.models
import autocrm.fields.models
import autocrm.files.models
import autocrm.kb.models
import autocrm.macros.models
import autocrm.mail.models
import autocrm.notifications.models
import autocrm.people.models
import autocrm.site.models
import autocrm.sla.models
import autocrm.tickets.models
import autocrm.webhooks.models  # noqa: F401
