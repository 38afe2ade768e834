"""Configuration: every setting comes from an ``AUTOCRM_*`` environment variable.

The defaults give the embedded, one-machine setup (SQLite in the instance folder and an
embedded Redis reached through a unix socket there); setting ``AUTOCRM_DATABASE_URL`` and
``AUTOCRM_REDIS_URL`` switches to real servers with no other change.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celeryconfig import settings as celery_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
PREFIX = "AUTOCRM_"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(PREFIX + name, default)


def _flag(name: str) -> bool:
    """An on/off setting, off unless set to on, 1, true or yes."""
    return (_env(name, "") or "").strip().lower() in {"on", "1", "true", "yes"}


class InvalidSetting(ValueError):
    """A setting that cannot work; the message names the variable (the app refuses to start)."""


def on_off(name: str, value: object) -> bool:
    """A setting that must say on or off (``value`` from the environment, or a test's bool)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in {"on", "off", "1", "0", "true", "false", "yes", "no"}:
        raise InvalidSetting(f"{PREFIX}{name} must be on or off, not {value!r}.")
    return text in {"on", "1", "true", "yes"}


def default_instance_path() -> Path:
    return Path(_env("INSTANCE_PATH") or REPO_ROOT / "instance").resolve()


def embedded_redis_socket(instance_path: Path) -> Path:
    """Where the embedded Redis started by ``make run`` listens."""
    return instance_path / "redis.sock"


def _persistent_secret_key(instance_path: Path) -> str:
    """A random key kept in the instance folder, so tokens survive a restart in development."""
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


@dataclass
class Settings:
    """The settings AutoCRM reads; ``as_flask_config`` maps them onto Flask's config keys."""

    instance_path: Path = field(default_factory=default_instance_path)
    database_url: str | None = field(default_factory=lambda: _env("DATABASE_URL"))
    redis_url: str | None = field(default_factory=lambda: _env("REDIS_URL"))
    secret_key: str | None = field(default_factory=lambda: _env("SECRET_KEY"))
    token_ttl_seconds: int = field(default_factory=lambda: int(_env("TOKEN_TTL", "43200") or 0))
    login_rate_limit: str = field(
        default_factory=lambda: _env("LOGIN_RATE_LIMIT", "10 per minute") or ""
    )
    redis_key_prefix: str = field(default_factory=lambda: _env("REDIS_KEY_PREFIX", "") or "")
    ratelimit_storage_url: str | None = field(default_factory=lambda: _env("RATELIMIT_STORAGE_URL"))
    # Reverse proxies in front of the web processes (0: clients connect directly).
    trusted_proxies: int = field(default_factory=lambda: int(_env("TRUSTED_PROXIES", "0") or 0))
    async_mode: str = field(default_factory=lambda: _env("ASYNC_MODE", "threading") or "")
    secure_cookies: bool = field(
        default_factory=lambda: (_env("SECURE_COOKIES", "off") or "").lower() in {"on", "1"}
    )
    base_url: str = field(default_factory=lambda: _env("BASE_URL", "http://127.0.0.1:5000") or "")
    outbox_relay_enabled: bool = field(
        default_factory=lambda: (_env("OUTBOX_RELAY", "on") or "").lower() not in {"off", "0"}
    )
    # Outgoing email: no SMTP host means emails are logged (the console mailer), not sent.
    smtp_host: str | None = field(default_factory=lambda: _env("SMTP_HOST") or None)
    smtp_port: int = field(default_factory=lambda: int(_env("SMTP_PORT", "25") or 25))
    smtp_username: str | None = field(default_factory=lambda: _env("SMTP_USERNAME") or None)
    smtp_password: str | None = field(default_factory=lambda: _env("SMTP_PASSWORD") or None)
    smtp_starttls: bool = field(default_factory=lambda: _flag("SMTP_STARTTLS"))
    smtp_ssl: bool = field(default_factory=lambda: _flag("SMTP_SSL"))
    smtp_timeout: float = field(default_factory=lambda: float(_env("SMTP_TIMEOUT", "10") or 10))
    # The largest request body accepted (werkzeug answers 413 before reading a larger one).
    max_request_bytes: int = field(
        default_factory=lambda: int(_env("MAX_REQUEST_BYTES", str(2**20)) or 2**20)
    )
    mail_from: str = field(
        default_factory=lambda: _env("MAIL_FROM", "AutoCRM <support@localhost>") or ""
    )
    # Changes to one ticket within this many seconds reach a customer as one email.
    customer_email_window: int = field(
        default_factory=lambda: int(_env("CUSTOMER_EMAIL_WINDOW", "120") or 0)
    )
    # How long an emailed password-reset link works, in seconds.
    password_reset_ttl: int = field(
        default_factory=lambda: int(_env("PASSWORD_RESET_TTL", "3600") or 3600)
    )
    # How long an emailed invitation to set a first password works, in seconds (a week).
    invitation_ttl: int = field(
        default_factory=lambda: int(_env("INVITATION_TTL", "604800") or 604800)
    )
    # How long a file's link in an email works without logging in, in seconds (a week).
    file_link_ttl: int = field(
        default_factory=lambda: int(_env("FILE_LINK_TTL", "604800") or 604800)
    )
    # Requests one address may make a day through the help center's form without an account.
    anonymous_daily_cap: int = field(
        default_factory=lambda: int(_env("ANONYMOUS_DAILY_CAP", "10") or 10)
    )
    # The email channel (autocrm.mail): the largest email accepted (bigger ones are kept as
    # failed mail), messages one sender may send per hour before the rest wait for an admin,
    # and how often beat polls IMAP mailboxes.
    mail_max_bytes: int = field(
        default_factory=lambda: int(_env("MAIL_MAX_BYTES", str(40 * 2**20)) or 40 * 2**20)
    )
    mail_sender_hourly_limit: int = field(
        default_factory=lambda: int(_env("MAIL_SENDER_HOURLY_LIMIT", "30") or 30)
    )
    mail_poll_interval: int = field(
        default_factory=lambda: int(_env("MAIL_POLL_INTERVAL", "30") or 30)
    )
    # A CA certificate (PEM) to trust for IMAP servers besides the system's (self-hosted ones).
    mail_ca_file: str | None = field(default_factory=lambda: _env("MAIL_CA_FILE"))
    # Single sign-on with OpenID Connect (autocrm.people.sso checks them): no issuer, no SSO.
    oidc_issuer: str | None = field(default_factory=lambda: _env("OIDC_ISSUER") or None)
    oidc_client_id: str | None = field(default_factory=lambda: _env("OIDC_CLIENT_ID") or None)
    oidc_client_secret: str | None = field(
        default_factory=lambda: _env("OIDC_CLIENT_SECRET") or None
    )
    oidc_allowed_domains: str = field(
        default_factory=lambda: _env("OIDC_ALLOWED_DOMAINS", "") or ""
    )
    oidc_default_role: str = field(
        default_factory=lambda: _env("OIDC_DEFAULT_ROLE", "agent") or "agent"
    )
    oidc_button_label: str = field(
        default_factory=lambda: _env("OIDC_BUTTON_LABEL", "single sign-on") or "single sign-on"
    )
    # "on" or "off" (checked at startup: a typo must not leave password login on unnoticed).
    staff_password_login: str = field(
        default_factory=lambda: _env("STAFF_PASSWORD_LOGIN", "on") or "on"
    )
    # Attachments: where files are kept (``local``: a folder; ``s3``: an S3-compatible bucket).
    storage: str = field(default_factory=lambda: (_env("STORAGE", "local") or "local").lower())
    storage_path: str | None = field(default_factory=lambda: _env("STORAGE_PATH") or None)
    s3_bucket: str | None = field(default_factory=lambda: _env("S3_BUCKET") or None)
    s3_endpoint_url: str | None = field(default_factory=lambda: _env("S3_ENDPOINT_URL") or None)
    s3_region: str | None = field(default_factory=lambda: _env("S3_REGION") or None)
    # None: boto3's own lookup (AWS_ACCESS_KEY_ID and friends, a profile, an instance role).
    s3_access_key_id: str | None = field(default_factory=lambda: _env("S3_ACCESS_KEY_ID") or None)
    s3_secret_access_key: str | None = field(
        default_factory=lambda: _env("S3_SECRET_ACCESS_KEY") or None
    )
    max_upload_bytes: int = field(
        default_factory=lambda: int(_env("MAX_UPLOAD_BYTES", str(20 * 2**20)) or 0)
    )
    max_attachments: int = field(default_factory=lambda: int(_env("MAX_ATTACHMENTS", "10") or 0))
    max_attachments_bytes: int = field(
        default_factory=lambda: int(_env("MAX_ATTACHMENTS_BYTES", str(50 * 2**20)) or 0)
    )
    upload_deny_types: str | None = field(default_factory=lambda: _env("UPLOAD_DENY_TYPES"))
    # ClamAV's daemon (tcp://host:port or unix:///path): every upload is scanned before it
    # may be downloaded. None: nothing is scanned.
    clamd_url: str | None = field(default_factory=lambda: _env("CLAMD_URL") or None)
    # Hosts webhooks may be delivered to although they resolve to private addresses (or over
    # plain http): comma-separated host names.
    webhook_allowed_hosts: str = field(
        default_factory=lambda: _env("WEBHOOK_ALLOWED_HOSTS", "") or ""
    )

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.instance_path / 'autocrm.db'}"

    def resolved_redis_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        return f"unix://{embedded_redis_socket(self.instance_path)}"

    def as_flask_config(self) -> dict[str, Any]:
        redis_url = self.resolved_redis_url()
        return {
            "SECRET_KEY": self.secret_key or _persistent_secret_key(self.instance_path),
            # The cookie goes back only when a request changed the session. Refreshed on every
            # response, a read answered after a form's POST (a page's background fetch) sent
            # back the session as it was before the POST and erased the message it flashed.
            # Nothing is lost: a session's lifetime counts from login on the server anyway.
            "SESSION_REFRESH_EACH_REQUEST": False,
            "SQLALCHEMY_DATABASE_URI": self.resolved_database_url(),
            # No pool_pre_ping (a round trip per checkout): a connection idle in the pool for
            # a while is pinged instead (autocrm.database.ping_when_idle); none lives past an
            # hour, so server-side idle limits never meet one.
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_recycle": 3600},
            "AUTOCRM_REDIS_URL": redis_url,
            "AUTOCRM_TOKEN_TTL": self.token_ttl_seconds,
            "AUTOCRM_LOGIN_RATE_LIMIT": self.login_rate_limit,
            "AUTOCRM_OUTBOX_RELAY": self.outbox_relay_enabled,
            "AUTOCRM_BASE_URL": self.base_url,
            "AUTOCRM_SECURE_COOKIES": self.secure_cookies,
            "AUTOCRM_TRUSTED_PROXIES": self.trusted_proxies,
            "AUTOCRM_ASYNC_MODE": self.async_mode,
            # Socket.IO rooms shared by every web process and the workers (None: this process
            # only, as in the in-process tests).
            "AUTOCRM_SOCKETIO_MESSAGE_QUEUE": redis_url,
            "AUTOCRM_REDIS_KEY_PREFIX": self.redis_key_prefix,
            # Web processes serve Socket.IO; workers only emit (see workers/__init__.py).
            "AUTOCRM_SOCKET_SERVER": True,
            "AUTOCRM_SMTP_HOST": self.smtp_host,
            "AUTOCRM_SMTP_PORT": self.smtp_port,
            "AUTOCRM_SMTP_USERNAME": self.smtp_username,
            "AUTOCRM_SMTP_PASSWORD": self.smtp_password,
            "AUTOCRM_SMTP_STARTTLS": self.smtp_starttls,
            "AUTOCRM_SMTP_SSL": self.smtp_ssl,
            "AUTOCRM_SMTP_TIMEOUT": self.smtp_timeout,
            "AUTOCRM_MAIL_FROM": self.mail_from,
            "AUTOCRM_CUSTOMER_EMAIL_WINDOW": self.customer_email_window,
            "AUTOCRM_PASSWORD_RESET_TTL": self.password_reset_ttl,
            "AUTOCRM_INVITATION_TTL": self.invitation_ttl,
            "AUTOCRM_FILE_LINK_TTL": self.file_link_ttl,
            "AUTOCRM_ANONYMOUS_DAILY_CAP": self.anonymous_daily_cap,
            "AUTOCRM_MAIL_MAX_BYTES": self.mail_max_bytes,
            "AUTOCRM_MAIL_SENDER_HOURLY_LIMIT": self.mail_sender_hourly_limit,
            "AUTOCRM_MAIL_POLL_INTERVAL": self.mail_poll_interval,
            "AUTOCRM_MAIL_CA_FILE": self.mail_ca_file,
            "AUTOCRM_OIDC_ISSUER": self.oidc_issuer,
            "AUTOCRM_OIDC_CLIENT_ID": self.oidc_client_id,
            "AUTOCRM_OIDC_CLIENT_SECRET": self.oidc_client_secret,
            "AUTOCRM_OIDC_ALLOWED_DOMAINS": self.oidc_allowed_domains,
            "AUTOCRM_OIDC_DEFAULT_ROLE": self.oidc_default_role,
            "AUTOCRM_OIDC_BUTTON_LABEL": self.oidc_button_label,
            "AUTOCRM_STAFF_PASSWORD_LOGIN": self.staff_password_login,
            "AUTOCRM_STORAGE": self.storage,
            "AUTOCRM_STORAGE_PATH": self.storage_path or str(self.instance_path / "attachments"),
            "AUTOCRM_S3_BUCKET": self.s3_bucket,
            "AUTOCRM_S3_ENDPOINT_URL": self.s3_endpoint_url,
            "AUTOCRM_S3_REGION": self.s3_region,
            "AUTOCRM_S3_ACCESS_KEY_ID": self.s3_access_key_id,
            "AUTOCRM_S3_SECRET_ACCESS_KEY": self.s3_secret_access_key,
            "AUTOCRM_MAX_UPLOAD_BYTES": self.max_upload_bytes,
            "AUTOCRM_MAX_ATTACHMENTS": self.max_attachments,
            "AUTOCRM_MAX_ATTACHMENTS_BYTES": self.max_attachments_bytes,
            # None: the built-in list (``autocrm.files.types.DEFAULT_DENY``).
            "AUTOCRM_UPLOAD_DENY_TYPES": self.upload_deny_types,
            "AUTOCRM_CLAMD_URL": self.clamd_url,
            "AUTOCRM_WEBHOOK_ALLOWED_HOSTS": self.webhook_allowed_hosts,
            "MAX_CONTENT_LENGTH": self.max_request_bytes,
            # Form fields may use all of it (werkzeug's own default for them is 500 kB, less
            # than a long article typed in a non-Latin script).
            "MAX_FORM_MEMORY_SIZE": self.max_request_bytes,
            "RATELIMIT_STORAGE_URI": self.ratelimit_storage_url or limits_storage_url(redis_url),
            "RATELIMIT_HEADERS_ENABLED": True,
            "CELERY": celery_config(redis_url, self.redis_key_prefix),
            "API_TITLE": "AutoCRM API",
            "API_VERSION": "v1",
            "OPENAPI_VERSION": "3.0.3",
            "OPENAPI_URL_PREFIX": "/api",
            "OPENAPI_JSON_PATH": "openapi.json",
            "OPENAPI_SWAGGER_UI_PATH": "/docs",
            "OPENAPI_SWAGGER_UI_URL": "/static/vendor/swagger-ui/",
            # No call to swagger.io's online validator: the docs page works with no network.
            "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
        }


def celery_broker_url(redis_url: str) -> str:
    """Kombu spells a unix-socket Redis URL differently from redis-py."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


def limits_storage_url(redis_url: str) -> str:
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url.removeprefix("unix://")
    return redis_url


def celery_config(redis_url: str, key_prefix: str = "") -> dict[str, Any]:
    """Celery's settings for this Redis; ``key_prefix`` lets installations share one Redis."""
    transport = dict(celery_settings["broker_transport_options"])
    if key_prefix:
        transport["global_keyprefix"] = key_prefix
    return {
        **celery_settings,
        "broker_url": celery_broker_url(redis_url),
        "broker_transport_options": transport,
        "result_backend": None,
    }
