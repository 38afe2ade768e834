"""The application factory. Building an app opens no connection and starts nothing."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis
from flask import Flask
from flask.json.provider import DefaultJSONProvider
from werkzeug.middleware.proxy_fix import ProxyFix

import api
import autocrm.models  # noqa: F401 (every mapped class, before the first query)
import web
from autocrm import aftercommit, cli, database, ratelimit, requestguard, transaction
from autocrm.config import Settings
from autocrm.events import causes, outbox
from autocrm.extensions import db, migrate
from autocrm.fields import indexes as field_indexes
from autocrm.files import scanning
from autocrm.files import services as files
from autocrm.files.storage import storage_from_config
from autocrm.mail import mailer as mail
from autocrm.people import sso
from autocrm.realtime import access as realtime_access
from autocrm.realtime import publish as realtime
from autocrm.realtime import sockets
from autocrm.taskqueue import init_celery
from autocrm.webhooks import deliveries as webhooks

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from ``AUTOCRM_*`` settings; ``config`` overrides Flask config keys."""
    settings = Settings()
    app = Flask(
        "autocrm",
        instance_path=str(settings.instance_path),
        static_folder=str(Path(web.__file__).parent / "static"),
    )
    app.config.from_mapping(settings.as_flask_config())
    if config:
        app.config.from_mapping(config)
    sso.check_settings(app.config)  # a setting that cannot work stops the start, named
    if isinstance(app.json, DefaultJSONProvider):  # Flask's own; the only one that sorts keys
        app.json.sort_keys = False  # keep the schemas' field order (id first) in responses

    if proxies := app.config["AUTOCRM_TRUSTED_PROXIES"]:
        # The client's address and scheme from X-Forwarded-For/-Proto, set by that many proxies.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    db.init_app(app)
    with app.app_context():
        database.tune(db.engine)
    database.mark_safe_requests_read_only(app)
    migrate.init_app(
        app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True, compare_type=True
    )
    requestguard.install(app)
    ratelimit.init_app(app)
    aftercommit.install()
    transaction.install()
    causes.install()
    outbox.install()
    init_celery(app)
    # Chosen here, connected only when an email is sent.
    app.extensions["mailer"] = mail.mailer_from_config(app.config)
    # Where attachment bytes live; no connection until a file is stored or read.
    app.extensions["autocrm.storage"] = storage_from_config(app.config)
    files.install()
    # The malware scanner of uploads (none unless AUTOCRM_CLAMD_URL); connected per scan.
    app.extensions["autocrm.scanner"] = scanning.scanner_from_config(app.config)
    scanning.install()
    field_indexes.install()  # a dropdown field's index is built by a worker after commit
    webhooks.install()  # deliveries go to workers after commit
    # Presence and socket bookkeeping: a blocking pool, so that a burst of disconnects under
    # eventlet waits for a connection instead of failing (redis-py's default pool raises).
    app.extensions["autocrm.redis"] = redis.Redis(
        connection_pool=redis.BlockingConnectionPool.from_url(
            app.config["AUTOCRM_REDIS_URL"], max_connections=200, timeout=10
        )
    )
    realtime.install()
    realtime_access.install()
    sockets.init_app(app, server=app.config["AUTOCRM_SOCKET_SERVER"])
    api.init_app(app)
    web.init_app(app, api.BLUEPRINTS)
    cli.register(app)
    return app
