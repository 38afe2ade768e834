"""The OpenID Connect relying party: the protocol half of single sign-on, no database.

``begin`` sends the browser to the provider (authorization code flow with PKCE, a random
``state`` against forged callbacks and a ``nonce`` bound into the ID token); the caller keeps
the returned ``Flow`` in the session. ``finish`` checks the callback against that flow,
exchanges the code for tokens (Authlib's client, over ``requests``) and verifies the ID
token: signed by a key of the provider's JWKS with an asymmetric algorithm, issued by the
configured issuer for this client, not expired, and carrying the flow's nonce. It returns
the verified claims, topped up from the userinfo endpoint when the ID token carries no email.

The provider's endpoints come from its discovery document
(``<issuer>/.well-known/openid-configuration``), fetched at each step: sign-ons are rare, and
a provider rotating its keys is then seen at once. What goes wrong here is the provider's or
the request's fault, never a bug: ``ProviderUnavailable`` (502) and ``SignOnFailed`` (400)
carry a message for the login page.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from autocrm.errors import DomainError

HTTP_TIMEOUT_S = 10.0
SCOPES = "openid email profile"
# Asymmetric only: "none" and HMAC (keyed with the client secret) are never accepted.
ID_TOKEN_ALGORITHMS = ("RS256", "PS256", "ES256")
CLOCK_LEEWAY_S = 60


class ProviderUnavailable(DomainError):
    """The provider did not answer, or answered nonsense: nothing the user can fix."""

    status_code = 502


class SignOnFailed(DomainError):
    """The callback is not the answer to a sign-on this browser began, or the provider
    refused or sent an ID token that does not verify."""

    status_code = 400


@dataclass(frozen=True)
class Client:
    """How AutoCRM is registered at the provider."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str


@dataclass(frozen=True)
class Flow:
    """One sign-on in progress, kept in the browser's (signed) session between the two
    steps. ``next`` is where to go afterwards."""

    state: str
    nonce: str
    code_verifier: str
    next: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_session(cls, value: Any) -> Flow | None:
        if not isinstance(value, Mapping):
            return None
        try:
            return cls(**{k: value[k] for k in ("state", "nonce", "code_verifier", "next")})
        except (KeyError, TypeError):
            return None


def _get_json(url: str, what: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT_S, **kwargs)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnavailable(
            "The single sign-on provider is not answering. Try again in a moment.",
            {"provider": [f"{what}: {exc}"]},
        ) from exc
    if not isinstance(document, dict):
        raise ProviderUnavailable(
            "The single sign-on provider sent something unexpected.",
            {"provider": [f"{what} is not a JSON object"]},
        )
    return document


def discover(issuer: str) -> dict[str, Any]:
    """The provider's discovery document, checked to be its own (the issuer it names)."""
    metadata = _get_json(f"{issuer.rstrip('/')}/.well-known/openid-configuration", "discovery")
    needed = ("authorization_endpoint", "token_endpoint", "jwks_uri")
    missing = [key for key in needed if not isinstance(metadata.get(key), str)]
    if metadata.get("issuer") != issuer or missing:
        raise ProviderUnavailable(
            "The single sign-on provider is not set up as AutoCRM expects.",
            {"provider": [f"discovery names issuer {metadata.get('issuer')!r}, lacks {missing}"]},
        )
    return metadata


def _session(client: Client) -> OAuth2Session:
    return OAuth2Session(
        client.client_id,
        client.client_secret,
        scope=SCOPES,
        redirect_uri=client.redirect_uri,
        code_challenge_method="S256",
    )


def begin(client: Client, next_url: str | None = None) -> tuple[str, Flow]:
    """The provider's authorization URL to send the browser to, and the flow to keep."""
    metadata = discover(client.issuer)
    flow = Flow(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(48),
        next=next_url,
    )
    url, _ = _session(client).create_authorization_url(
        metadata["authorization_endpoint"],
        state=flow.state,
        nonce=flow.nonce,
        code_verifier=flow.code_verifier,
    )
    return url, flow


def _check_callback(flow: Flow | None, args: Mapping[str, str]) -> str:
    """The authorization code, if the callback answers this browser's sign-on."""
    if flow is None:
        raise SignOnFailed(
            "This sign-on was not started in this browser, or it already finished. "
            "Start again with the single sign-on button."
        )
    if not hmac.compare_digest(args.get("state", ""), flow.state):
        raise SignOnFailed(
            "The sign-on answer does not match the sign-on this browser started. "
            "Start again with the single sign-on button."
        )
    if "error" in args:
        reason = args.get("error_description") or args["error"]
        raise SignOnFailed(f"The single sign-on provider did not log you in: {reason[:200]}")
    code = args.get("code", "")
    if not code:
        raise SignOnFailed("The single sign-on provider sent no authorization code.")
    return code


def _exchange(client: Client, metadata: Mapping[str, Any], code: str, flow: Flow) -> dict:
    try:
        token = _session(client).fetch_token(
            metadata["token_endpoint"],
            code=code,
            code_verifier=flow.code_verifier,
            timeout=HTTP_TIMEOUT_S,
        )
    except (requests.RequestException, ValueError) as exc:  # ValueError: not JSON
        raise ProviderUnavailable(
            "The single sign-on provider is not answering. Try again in a moment.",
            {"provider": [f"token endpoint: {exc}"]},
        ) from exc
    except AuthlibBaseError as exc:  # the provider refused the code (an OAuth error answer)
        raise SignOnFailed(
            "The single sign-on provider did not accept the sign-on. Start again.",
            {"provider": [str(exc)]},
        ) from exc
    return dict(token)


def verify_id_token(client: Client, jwks: Mapping[str, Any], id_token: Any, nonce: str) -> dict:
    """The ID token's claims, if it is genuine and meant for this sign-on."""
    try:
        keys = KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
        token = jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)
        jwt.JWTClaimsRegistry(
            leeway=CLOCK_LEEWAY_S,
            iss={"essential": True, "value": client.issuer},
            aud={"essential": True, "value": client.client_id},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise SignOnFailed(
            "The single sign-on provider's answer could not be verified. Start again.",
            {"id_token": [str(exc) or type(exc).__name__]},
        ) from exc
    return dict(token.claims)


def _with_userinfo(metadata: Mapping[str, Any], claims: dict, access_token: Any) -> dict:
    """Providers may keep email out of the ID token; userinfo has it then (for the same
    subject only)."""
    endpoint = metadata.get("userinfo_endpoint")
    if "email" in claims or not isinstance(endpoint, str) or not isinstance(access_token, str):
        return claims
    info = _get_json(endpoint, "userinfo", headers={"Authorization": f"Bearer {access_token}"})
    if info.get("sub") != claims["sub"]:
        return claims
    return {**{k: info[k] for k in ("email", "email_verified", "name") if k in info}, **claims}


def finish(client: Client, flow: Flow | None, args: Mapping[str, str]) -> dict[str, Any]:
    """The verified claims of the user the provider logged in (``args``: the callback's
    query)."""
    code = _check_callback(flow, args)
    assert flow is not None  # _check_callback refused a missing one
    metadata = discover(client.issuer)
    token = _exchange(client, metadata, code, flow)
    if "id_token" not in token:
        raise SignOnFailed("The single sign-on provider sent no ID token. Start again.")
    jwks = _get_json(metadata["jwks_uri"], "JWKS")
    claims = verify_id_token(client, jwks, token["id_token"], flow.nonce)
    return _with_userinfo(metadata, claims, token.get("access_token"))
