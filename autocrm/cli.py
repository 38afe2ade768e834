"""Command-line tools: ``flask --app wsgi create-user``, ``seed-demo`` and
``recompute-durations``."""

from __future__ import annotations

import click
from flask import Flask
from sqlalchemy import func, select

from autocrm.demo import seed
from autocrm.demo.logins import DEMO_LOGINS
from autocrm.errors import DomainError
from autocrm.extensions import db
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


def register(app: Flask) -> None:
    app.cli.add_command(create_user_command)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(recompute_durations_command)
