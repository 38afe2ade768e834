"""The admin console: people (users, teams, organizations), support mailboxes, workflows and
SLA policies, outgoing webhooks, storage and the malware scan, the audit log.

Each area is its own blueprint under ``/admin``; pages share ``admin/_layout.html`` (the
console's section navigation). Every page is for admins only, and the services check it again.
"""

from __future__ import annotations

from web.admin import (
    audit,
    fields,
    mailboxes,
    organizations,
    people,
    request_forms,
    storage,
    webhooks,
    workflows,
)

blueprints = (
    people.bp,
    organizations.bp,
    mailboxes.bp,
    workflows.bp,
    webhooks.bp,
    fields.bp,
    request_forms.bp,
    storage.bp,
    audit.bp,
)
