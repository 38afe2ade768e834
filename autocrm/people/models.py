"""People and teams: users with a role, teams with members and a lead, organizations of
customers."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from autocrm.columns import JSONType, UTCDateTime, utcnow
from autocrm.extensions import Model


class Role(enum.StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    ADMIN = "admin"

    @property
    def is_staff(self) -> bool:
        return self is not Role.CUSTOMER


def enum_values(enum_cls: type[enum.Enum]) -> list[str]:
    return [member.value for member in enum_cls]


class User(Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=20, values_callable=enum_values), index=True
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    # When the person proved the address is theirs (a sign-up's confirmation link, or setting a
    # password through an emailed link); None: a customer made by someone else's request who
    # has not yet, and who cannot log in until they do (``autocrm.people.intake``).
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When mail to the address bounced (a delivery status notification came back): no more
    # email is sent to it until the address changes or an admin clears it.
    email_bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Two-factor login (``autocrm.people.twofactor``): the TOTP secret, encrypted with a key
    # derived from SECRET_KEY; set but not enabled while enrolment waits for its first code.
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The time step of the last code accepted: no code logs in twice.
    totp_last_step: Mapped[int | None]
    # The customer's company (``autocrm.people.organizations``); a manager sees the tickets of
    # every customer of it, a plain member only their own.
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="SET NULL"), index=True
    )
    organization_manager: Mapped[bool] = mapped_column(default=False)
    # What agents note about a customer (``autocrm.people.customers``); never shown to them.
    notes: Mapped[str] = mapped_column(Text, default="")

    organization: Mapped[Organization | None] = relationship(back_populates="members")
    memberships: Mapped[list[TeamMembership]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    # Not a column: whether the user leads a team, read with a web session's login
    # (``autocrm.people.sessions``) for the staff navigation's Reports link; None when not read
    # (another login, or the user reloaded after a commit), and then asked of the database.
    leads_a_team: Mapped[bool | None] = query_expression()

    # Not a column: the scope of the personal API token this request came with (see
    # ``autocrm.people.tokens`` and ``autocrm.policies``); None for a password login or a web
    # session, which may do all their role allows.
    __allow_unmapped__ = True
    token_scope: TokenScope | None = None

    @property
    def has_two_factor(self) -> bool:
        return self.totp_enabled_at is not None

    @property
    def team_ids(self) -> list[int]:
        return sorted(m.team_id for m in self.memberships)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role.value}>"


class Organization(Model):
    """A customer's company: customers whose address is in one of its ``domains`` join it when
    they are created, if ``auto_join`` is on; admins add and remove others by hand."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    auto_join: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    domain_rows: Mapped[list[OrganizationDomain]] = relationship(
        back_populates="organization",
        cascade="all, delete-orphan",
        order_by="OrganizationDomain.domain",
    )
    members: Mapped[list[User]] = relationship(
        back_populates="organization", passive_deletes=True, order_by="User.name"
    )

    @property
    def domains(self) -> list[str]:
        return [row.domain for row in self.domain_rows]


class OrganizationDomain(Model):
    """An email domain of an organization. Its own table so the database itself keeps a domain
    from belonging to two organizations (a unique constraint, not a search)."""

    __tablename__ = "organization_domains"

    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )

    organization: Mapped[Organization] = relationship(back_populates="domain_rows")


class AssignmentPolicy(enum.StrEnum):
    """How a worker picks an agent for a ticket entering the team without an assignee."""

    MANUAL = "manual"
    ROUND_ROBIN = "round_robin"
    LEAST_OPEN = "least_open"


class Team(Model):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    assignment_policy: Mapped[AssignmentPolicy] = mapped_column(
        Enum(AssignmentPolicy, native_enum=False, length=20, values_callable=enum_values),
        default=AssignmentPolicy.ROUND_ROBIN,
    )
    # Open tickets an agent may hold before auto-assignment skips them (None: no cap).
    max_open_per_agent: Mapped[int | None]
    # Round-robin position: the agent who got the team's last automatic assignment.
    last_assigned_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # The team's business hours (workflows.calendar definition); when set, its tickets' SLA
    # clocks run on it instead of the workflow SLA policy's calendar.
    calendar: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    lead: Mapped[User | None] = relationship(foreign_keys=[lead_id])
    memberships: Mapped[list[TeamMembership]] = relationship(
        back_populates="team", cascade="all, delete-orphan"
    )

    @property
    def member_ids(self) -> list[int]:
        return sorted(m.user_id for m in self.memberships)


class TeamMembership(Model):
    __tablename__ = "team_memberships"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    team: Mapped[Team] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship(back_populates="memberships")


class UserSession(Model):
    """A web login, server-side: the session cookie names it by a random key (only the key's
    SHA-256 is kept), and a cookie whose row is gone is logged out. Logging out, "log out
    everywhere" and an admin ending a user's sessions delete rows."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TokenScope(enum.StrEnum):
    """What a personal API token may do: read (GET only), write (what the user may do, but no
    administration), admin (everything the admin may do)."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


class ApiToken(Model):
    """A personal API token: named, scoped, expiring, revocable. Only the SHA-256 of the token
    is kept (it is 32 random bytes: no slow hash needed), with its first characters to tell
    tokens apart in the list. Revoking deletes the row; the audit log keeps the record."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    scope: Mapped[TokenScope] = mapped_column(
        Enum(TokenScope, native_enum=False, length=20, values_callable=enum_values)
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship()


class SsoIdentity(Model):
    """A user's account at an OpenID Connect provider: the provider (its issuer URL) and the
    subject it names the user by, which, unlike an email address, never changes or passes to
    someone else. Made at a user's first single sign-on; later ones find the user by it."""

    __tablename__ = "sso_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecoveryCode(Model):
    """A single-use code that stands in for the authenticator app at login (a lost phone).
    Shown once when two-factor login is enabled; only its SHA-256 is kept (the codes are random
    and long, so a fast hash is enough). ``used_at`` is set when it is spent."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
