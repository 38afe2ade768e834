"""Command-line tools: ``flask --app wsgi create-user``, ``seed-demo``,
``recompute-durations`` and ``mail-in`` (what an MTA pipes received mail to)."""

from __future__ import annotations

import logging
import sys

import click
from flask import Flask
from sqlalchemy import func, select

from autocrm.demo import seed
from autocrm.demo.logins import DEMO_LOGINS
from autocrm.errors import DomainError
from autocrm.extensions import db
from autocrm.mail import mailboxes, receive
from autocrm.people import teams, users
from autocrm.people.models import Role, Team, User
from autocrm.tickets import services as tickets


@click.command("create-user")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--name", default=None)
@click.option("--team", "team_name", default=None, help="Add the user to this team (by name).")
def create_user_command(
    email: str, password: str, role: str, name: str | None, team_name: str | None
) -> None:
    """Create a user, optionally as a member of a team."""
    team = None
    if team_name:
        team = db.session.scalar(select(Team).where(Team.name == team_name))
        if team is None:
            raise click.BadParameter(f"no team named {team_name!r}", param_hint="--team")
        if not Role(role).is_staff:
            raise click.BadParameter("customers cannot join teams", param_hint="--team")
    try:
        user = users.create_user(email, password, Role(role), name)
        if team is not None:
            teams.add_member(team, user)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        details = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.errors.items())
        raise click.ClickException(f"{exc.message} {details}".strip()) from exc
    click.echo(f"Created {user.role.value} {user.email} (id {user.id}).")


@click.command("seed-demo")
def seed_demo_command() -> None:
    """Load demo teams, agents, customers and tickets (once), and print the demo logins."""
    demo_emails = [login.email for login in DEMO_LOGINS]
    present = db.session.scalar(select(func.count(User.id)).where(User.email.in_(demo_emails)))
    if present == len(demo_emails):
        seed.top_up_demo()
        click.echo("Demo data already loaded.")
    elif present:
        raise click.ClickException(
            "Some demo accounts exist, others do not; not seeding over them."
        )
    elif db.session.scalar(select(func.count(User.id))):
        click.echo("This database already has (non-demo) users; not seeding demo data.")
        return
    else:
        seed.seed_demo()
        click.echo("Seeded demo data.")
    click.echo("Demo logins (email / password):")
    for login in DEMO_LOGINS:
        click.echo(f"  {login.role:<9} {login.email:<28} {login.password}")


@click.command("recompute-durations")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 10_000))
def recompute_durations_command(batch_size: int) -> None:
    """Measure every ticket's first-response and resolution time again in business hours
    (after upgrading past migration 0007, or after changing a team's hours)."""
    done = tickets.do_recompute_business_durations(
        batch_size, progress=lambda n: click.echo(f"{n} tickets measured", err=True)
    )
    click.echo(f"Recomputed the durations of answered or solved tickets: {done}.")


# sysexits.h: what Postfix's pipe (and sendmail's .forward) understand.
EX_NOUSER = 67  # bounced: no such mailbox
EX_TEMPFAIL = 75  # kept in the MTA's queue and tried again later


@click.command("mail-in")
@click.option("--mailbox", "name", required=True, help="The mailbox (by name) it was sent to.")
def mail_in_command(name: str) -> None:
    """Receive one RFC 5322 message on standard input (Postfix's pipe, a .forward). Exits 0
    once it is stored, as a ticket change or as failed mail an admin sees; 75 (try again
    later) when the database or file storage cannot take it; 67 for an unknown mailbox."""
    raw = sys.stdin.buffer.read()
    try:
        mailbox = mailboxes.mailbox_named(name)
        if mailbox is None:
            click.echo(f"mail-in: no active mailbox named {name!r}", err=True)
            sys.exit(EX_NOUSER)
        inbound = receive.do_receive_email(mailbox, raw, via="pipe")
    except Exception as exc:  # whatever it is, the MTA keeps the message and retries
        logging.getLogger(__name__).exception("mail-in: not stored")
        click.echo(f"mail-in: not stored, try again later: {exc}", err=True)
        sys.exit(EX_TEMPFAIL)
    click.echo(f"{inbound.status.value} {inbound.id} {inbound.reason}".strip())


def register(app: Flask) -> None:
    app.cli.add_command(create_user_command)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(recompute_durations_command)
    app.cli.add_command(mail_in_command)
