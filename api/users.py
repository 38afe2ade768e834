"""User and team endpoints (management is admin-only; see autocrm.policies)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from api import schemas
from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from autocrm.listing import PageRequest
from autocrm.people import intake, sessions, teams, users

users_blp = Blueprint("users", __name__, url_prefix="/api/users", description="Users.")
teams_blp = Blueprint("teams", __name__, url_prefix="/api/teams", description="Teams.")
users_blp.before_request(require_bearer)
teams_blp.before_request(require_bearer)


@users_blp.route("/me")
class Me(MethodView):
    @users_blp.response(200, schemas.UserSchema)
    def get(self) -> Any:
        """The user the token belongs to."""
        return current_actor()


@users_blp.route("")
class UserCollection(MethodView):
    @users_blp.arguments(schemas.UserListArgsSchema, location="query", unknown=ma.RAISE)
    @users_blp.response(200, schemas.UserPageSchema)
    @users_blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def get(self, args: dict[str, Any]) -> Any:
        """List users (admin)."""
        page = PageRequest(limit=args.pop("limit"), cursor=args.pop("cursor", None), sort="id")
        return users.list_users(current_actor(), page, **args)

    @users_blp.arguments(schemas.UserCreateSchema)
    @users_blp.response(201, schemas.UserSchema)
    @users_blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def post(self, body: dict[str, Any]) -> Any:
        """Create a user (admin)."""
        return users.do_create_user(current_actor(), **body)


@users_blp.route("/invitations")
class Invitations(MethodView):
    @users_blp.arguments(schemas.InvitationSchema)
    @users_blp.response(201, schemas.UserSchema)
    @users_blp.alt_response(403, schema=ErrorSchema, description="Staff only.")
    @users_blp.alt_response(
        422,
        schema=ErrorSchema,
        description="A bad address, or one that already has an account or belongs to staff.",
    )
    def post(self, body: dict[str, Any]) -> Any:
        """Invite a customer (staff): the account, unconfirmed until they choose a password
        through the emailed link (valid ``AUTOCRM_INVITATION_TTL`` seconds, once)."""
        return intake.do_invite_customer(current_actor(), body["email"], body["name"])


@users_blp.route("/<id:user_id>")
class UserItem(MethodView):
    @users_blp.response(200, schemas.UserSchema)
    @users_blp.alt_response(
        404, schema=ErrorSchema, description="No such user, or not one you may see."
    )
    def get(self, user_id: int) -> Any:
        """One user (customers: only themselves)."""
        return users.access_user_by_id(current_actor(), user_id)

    @users_blp.arguments(schemas.UserUpdateSchema)
    @users_blp.response(200, schemas.UserSchema)
    @users_blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def patch(self, body: dict[str, Any], user_id: int) -> Any:
        """Change a user's name, email, role, password or active flag (admin). An agent
        deactivated or made a customer releases their open tickets to their teams' queues."""
        return users.do_update_user(current_actor(), user_id, body)


@users_blp.route("/<id:user_id>/sessions")
class UserSessions(MethodView):
    @users_blp.response(200, schemas.SessionsEndedSchema)
    @users_blp.alt_response(403, schema=ErrorSchema, description="Admins only, for others.")
    @users_blp.alt_response(404, schema=ErrorSchema, description="No such user.")
    def delete(self, user_id: int) -> Any:
        """Log a user out of the web pages everywhere: every session ends and its sockets close
        (yourself, or anyone as an admin; recorded in the audit log). Bearer tokens stay valid."""
        return {"ended": sessions.do_end_all_sessions(current_actor(), user_id)}


@teams_blp.route("")
class TeamCollection(MethodView):
    @teams_blp.arguments(schemas.PageArgsSchema, location="query", unknown=ma.RAISE)
    @teams_blp.response(200, schemas.TeamPageSchema)
    @teams_blp.alt_response(403, schema=ErrorSchema, description="Staff only.")
    def get(self, args: dict[str, Any]) -> Any:
        """List teams (staff)."""
        return teams.list_teams(current_actor(), PageRequest(sort="id", **args))

    @teams_blp.arguments(schemas.TeamCreateSchema)
    @teams_blp.response(201, schemas.TeamSchema)
    @teams_blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def post(self, body: dict[str, Any]) -> Any:
        """Create a team (admin)."""
        return teams.do_create_team(current_actor(), **body)


@teams_blp.route("/<id:team_id>")
class TeamItem(MethodView):
    @teams_blp.response(200, schemas.TeamSchema)
    @teams_blp.alt_response(404, schema=ErrorSchema, description="No such team.")
    def get(self, team_id: int) -> Any:
        """One team (staff)."""
        return teams.access_team_by_id(current_actor(), team_id)

    @teams_blp.arguments(schemas.TeamUpdateSchema)
    @teams_blp.response(200, schemas.TeamSchema)
    @teams_blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def patch(self, body: dict[str, Any], team_id: int) -> Any:
        """Change a team's name, description, lead, assignment policy, per-agent cap or business
        hours (admin)."""
        return teams.do_update_team(current_actor(), team_id, body)


@teams_blp.route("/<id:team_id>/members")
class TeamMembers(MethodView):
    @teams_blp.arguments(schemas.MemberSchema)
    @teams_blp.response(201, schemas.TeamSchema)
    @teams_blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def post(self, body: dict[str, Any], team_id: int) -> Any:
        """Add a staff member to the team (admin)."""
        return teams.do_add_member(current_actor(), team_id, body["user_id"])


@teams_blp.route("/<id:team_id>/members/<id:user_id>")
class TeamMember(MethodView):
    @teams_blp.response(200, schemas.TeamSchema)
    @teams_blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    @teams_blp.alt_response(404, schema=ErrorSchema, description="Not a member.")
    def delete(self, team_id: int, user_id: int) -> Any:
        """Remove a member from the team (admin); their open tickets of the team go back to
        its queue."""
        return teams.do_remove_member(current_actor(), team_id, user_id)
