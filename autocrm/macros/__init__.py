"""Macros: named reply texts with placeholders plus ticket changes (priority, team, assignee,
tags, a workflow transition), personal, shared with a team or with everyone, previewed and
applied to a ticket in one transaction. The former canned responses are text-only macros."""
