"""Every setting AutoCRM reads is in the README's settings table, and the production compose
file makes the choices a deployment behind its TLS proxy needs."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
# config.py's ``_env("NAME")``/``_flag("NAME")``, and the server's own reads of the environment.
READ_SETTING = re.compile(r'(?:_env|_flag|environ\.get|environ\[)\(?"(?:AUTOCRM_)?([A-Z0-9_]+)"')
TABLE_ROW = re.compile(r"^\| `AUTOCRM_([A-Z0-9_]+)` \|", re.MULTILINE)


def settings_read() -> set[str]:
    names: set[str] = set()
    for module in (REPO / "autocrm").rglob("*.py"):
        names.update(READ_SETTING.findall(module.read_text()))
    return names


def test_every_setting_read_is_in_the_readme_table() -> None:
    documented = set(TABLE_ROW.findall((REPO / "README.md").read_text()))
    assert {"SECURE_COOKIES", "TRUSTED_PROXIES"} <= settings_read()
    assert settings_read() - documented == set()


def test_compose_web_service_sets_cookie_and_proxy_settings() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    web = compose["services"]["web"]["environment"]
    assert web["AUTOCRM_SECURE_COOKIES"].endswith(":-on}")
    assert web["AUTOCRM_TRUSTED_PROXIES"].endswith(":-1}")
