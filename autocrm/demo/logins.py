"""The demo's people: the logins the README lists and ``seed-demo`` prints."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str
    name: str


DEMO_LOGINS = (
    DemoLogin("admin", "admin@example.com", "admin-demo-pass", "Ada Admin"),
    DemoLogin("agent", "agent@example.com", "agent-demo-pass", "Alex Agent"),
    DemoLogin("agent", "billing.agent@example.com", "agent-demo-pass", "Bea Billing"),
    DemoLogin("customer", "customer@example.com", "customer-demo-pass", "Casey Customer"),
    DemoLogin("customer", "customer2@example.com", "customer-demo-pass", "Dana Customer"),
)
