"""Custom ticket fields: admins define their own fields; every ticket carries their values.

- ``models``: the field definitions (``ticket_fields``); the values live in the ticket's JSON
  column ``tickets.custom_fields``, so adding a field needs no migration and no restart.
- ``definitions``: what admins do (create, change, reorder, retire options, delete), audited.
- ``values``: checking the values people send (errors at ``fields.<key>``), what each audience
  may read, and the SQL filter ``field.<key>=<value>`` on both databases.
"""
