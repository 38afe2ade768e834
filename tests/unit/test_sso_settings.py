"""Single sign-on settings are checked when the app starts: a setting that cannot work stops
it with a message naming the variable, instead of failing at someone's first login."""

from __future__ import annotations

from typing import Any

import pytest

from autocrm.config import InvalidSetting
from autocrm.people import sso
from autocrm.people.models import Role

GOOD = {
    "AUTOCRM_OIDC_ISSUER": "https://id.example.com/realms/staff",
    "AUTOCRM_OIDC_CLIENT_ID": "autocrm",
    "AUTOCRM_OIDC_CLIENT_SECRET": "secret",
}


def settings(**changes: Any) -> sso.SsoSettings | None:
    config = {**GOOD, **{f"AUTOCRM_{k}": v for k, v in changes.items()}}
    sso.check_settings(config)
    return sso.settings_from(config)


def test_no_issuer_means_no_single_sign_on() -> None:
    assert sso.settings_from({}) is None
    assert settings(OIDC_ISSUER="") is None


def test_the_defaults_make_agents_and_allow_any_domain() -> None:
    configured = settings()
    assert configured is not None
    assert configured.default_role is Role.AGENT
    assert configured.allowed_domains == frozenset()
    assert configured.button_label == "single sign-on"


def test_domains_are_a_trimmed_lowercase_list() -> None:
    configured = settings(OIDC_ALLOWED_DOMAINS=" Example.COM, @example.org ,,")
    assert configured is not None
    assert configured.allowed_domains == {"example.com", "example.org"}


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"OIDC_CLIENT_ID": ""}, "AUTOCRM_OIDC_CLIENT_ID"),
        ({"OIDC_CLIENT_SECRET": None}, "AUTOCRM_OIDC_CLIENT_SECRET"),
        ({"OIDC_ISSUER": "http://id.example.com"}, "https://"),
        ({"OIDC_ISSUER": "id.example.com"}, "AUTOCRM_OIDC_ISSUER"),
        ({"OIDC_ISSUER": "https://id.example.com/?x=1"}, "AUTOCRM_OIDC_ISSUER"),
        ({"OIDC_ALLOWED_DOMAINS": "example.com, not a domain"}, "not a domain"),
        ({"OIDC_ALLOWED_DOMAINS": "ann@example.com"}, "AUTOCRM_OIDC_ALLOWED_DOMAINS"),
        ({"OIDC_DEFAULT_ROLE": "superuser"}, "AUTOCRM_OIDC_DEFAULT_ROLE"),
        ({"STAFF_PASSWORD_LOGIN": "of"}, "AUTOCRM_STAFF_PASSWORD_LOGIN"),
    ],
)
def test_a_setting_that_cannot_work_is_named(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidSetting, match=named.replace("?", r"\?")):
        settings(**changes)


def test_a_provider_on_this_machine_may_use_plain_http() -> None:
    assert settings(OIDC_ISSUER="http://127.0.0.1:8080") is not None
    assert settings(OIDC_ISSUER="http://localhost:8080/idp") is not None


def test_staff_password_login_off_needs_single_sign_on() -> None:
    sso.check_settings({**GOOD, "AUTOCRM_STAFF_PASSWORD_LOGIN": "off"})
    with pytest.raises(InvalidSetting, match="AUTOCRM_STAFF_PASSWORD_LOGIN=off needs"):
        sso.check_settings({"AUTOCRM_STAFF_PASSWORD_LOGIN": "off"})


def test_the_app_refuses_to_start_with_a_broken_setting(monkeypatch, tmp_path) -> None:
    from autocrm import create_app

    monkeypatch.setenv("AUTOCRM_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("AUTOCRM_OIDC_ISSUER", "https://id.example.com")
    with pytest.raises(InvalidSetting, match="AUTOCRM_OIDC_CLIENT_ID"):
        create_app({"SECRET_KEY": "test"})
