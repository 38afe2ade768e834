"""Outgoing webhooks: admins subscribe HTTPS endpoints to ticket events; workers deliver signed
JSON documents to them after commit, at least once, in order per ticket, with retries.

- ``models``: subscriptions and the delivery log.
- ``subscriptions``: what admins do (create, change, rotate the secret, delete, list), audited.
- ``destinations``: where a delivery may go (no private addresses unless allow-listed).
- ``deliveries``: the outbox handler that records deliveries, the sender, the retry sweep.
"""
