"""The browser tests' stack: a real web server (``python -m autocrm.server`` under eventlet), a
Celery worker and beat, on a database of their own, driven by Playwright in Debian's Chromium.

- The database is dedicated to the browser tests (a separate SQLite file; on PostgreSQL a
  uniquely named database created, migrated and dropped here), seeded with the demo data
  (``autocrm.demo``), so the demo logins work. It is not rolled back: what a test
  creates stays until the browser tests end, so give what you create unique names. The
  stack runs only while tests/browser runs (package-scoped fixtures).
- The processes share the test Redis under a key prefix of their own (their Celery queue and
  Socket.IO channel are private).
- Data is created in the test process through services, inside ``live_server.data()``: its
  app writes to the same database and emits through the same Redis channel as the server, and
  every transaction is ended on the way out (on SQLite an open one would block the server).
  Poll with ``tests.processes.snapshot`` inside it.
- Every context from ``new_context`` (and so ``page``) is watched: a request to a host other
  than this machine, an uncaught JavaScript error, a Content-Security-Policy violation, or a
  page served without a strict CSP fails the test; so does a traceback in the server's log.
- Single sign-on is set up against the tests' own OpenID Connect provider (``sso_provider``,
  a process of its own): the login page shows "Log in with Test ID" (a link, so the password
  form's "Log in" stays the page's one button of that name).

Chromium must be at /usr/bin/chromium (Debian's package ``chromium``; ``.ci/run`` installs it)
or where ``AUTOCRM_TEST_CHROMIUM`` says. Without it these tests fail, they never skip.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from flask_migrate import upgrade
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Response,
    WebError,
    expect,
    sync_playwright,
)

from autocrm import create_app
from autocrm.config import celery_config
from autocrm.demo import seed
from autocrm.demo.logins import DEMO_LOGINS, DemoLogin
from autocrm.extensions import db
from tests import oidc_provider, processes
from tests.conftest import RUN_ID, app_config, key_prefix, wait_until
from tests.databases import scratch_database
from tests.smtp_server import SmtpServer

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = Path(os.environ.get("AUTOCRM_TEST_CHROMIUM", "/usr/bin/chromium"))
# Without the background-networking flags Chromium calls Google's hosts at every start, and a
# machine with no way out refuses them by the dozen.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
SERVER_START_TIMEOUT_S = 40.0
DEFAULT_VIEWPORT = (1280, 800)
# How long a logged-in page's actions and expectations wait (page loads, worker-driven changes).
PAGE_MS = 10_000

# The types of the ``login`` and ``screenshot`` fixtures.
Login = Callable[[Page, str, str], None]
Screenshot = Callable[[Page, str], Path]


def browser_key_prefix() -> str:
    """Under the run's prefix, so the session's Redis clean-up deletes these keys too."""
    return f"{key_prefix()}browser:"


def database_kind() -> str:
    return "postgres" if os.environ.get("AUTOCRM_TEST_DATABASE_URL") else "sqlite"


# -- the server stack -------------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database for the browser tests alone: created here, dropped afterwards (PostgreSQL)."""
    with scratch_database(
        os.environ.get("AUTOCRM_TEST_DATABASE_URL"), f"autocrm_browser_{RUN_ID}",
        tmp_path_factory.mktemp("browser-db"),
    ) as url:  # fmt: skip
        yield url


@pytest.fixture(scope="package")
def live_url() -> str:
    return f"http://127.0.0.1:{processes.free_port()}"


@pytest.fixture(scope="package")
def browser_app(
    app: Flask, browser_database_url: str, redis_url: str, live_url: str
) -> Iterator[Flask]:
    """The test process's app on the browser database: migrated and seeded with the demo data.
    It serves no sockets; it emits to the server's Socket.IO channel through Redis, and its
    outbox hands events to the browser worker's queue. (``app`` comes first: it points the
    instance folder at a temporary one, and gets its Celery back as the default.)"""
    prefix = browser_key_prefix()
    application = create_app(
        {
            **app_config(browser_database_url, redis_url),
            "AUTOCRM_ASYNC_MODE": "threading",
            "AUTOCRM_SOCKET_SERVER": False,
            "AUTOCRM_SOCKETIO_MESSAGE_QUEUE": redis_url,
            "AUTOCRM_REDIS_KEY_PREFIX": prefix,
            "AUTOCRM_BASE_URL": live_url,
            "CELERY": celery_config(redis_url, prefix),
        }
    )
    app.extensions["celery"].set_default()  # building an app made its own Celery the default
    try:
        with application.app_context():
            upgrade()
            seed.seed_demo()
            db.session.remove()
        yield application
    finally:
        application.extensions["celery"].close()
        application.extensions["autocrm.redis"].close()
        emitter = application.extensions.get("socketio")
        if emitter is not None:
            emitter.server.manager.redis.close()
        with application.app_context():
            db.engine.dispose()


@dataclass
class LiveServer:
    """The running stack: ``url`` of the web server, its processes and their logs."""

    url: str
    app: Flask
    web: processes.Process
    worker: processes.Process
    beat: processes.Process
    log_dir: Path

    @contextlib.contextmanager
    def data(self) -> Iterator[Any]:
        """``db.session`` of the browser database, for creating data through services (which
        commit) and reading it with ``processes.snapshot``; the transaction is ended on exit."""
        with self.app.app_context():
            try:
                yield db.session
            finally:
                db.session.rollback()
                db.session.remove()


SSO_BUTTON_LABEL = "Test ID"


@pytest.fixture(scope="package")
def sso_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[oidc_provider.Provider]:
    """The OpenID Connect provider the live server's single sign-on uses."""
    with oidc_provider.running(tmp_path_factory.mktemp("oidc-provider")) as provider:
        yield provider


@pytest.fixture(scope="package")
def mailbox() -> Iterator[SmtpServer]:
    """The SMTP server the live server's worker sends its emails to (``mailbox.to(address)``)."""
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _server_env(
    database_url: str,
    redis_url: str,
    url: str,
    sso: oidc_provider.Provider,
    mailbox: SmtpServer,
) -> dict[str, str]:
    port = str(urlsplit(url).port)
    return processes.test_env(
        database_url,
        redis_url,
        AUTOCRM_REDIS_KEY_PREFIX=browser_key_prefix(),
        AUTOCRM_BASE_URL=url,
        AUTOCRM_ASYNC_MODE="eventlet",
        AUTOCRM_HOST="127.0.0.1",
        AUTOCRM_PORT=port,
        # Tests log in far more often than people: one process, counts kept in memory.
        AUTOCRM_LOGIN_RATE_LIMIT="10000 per minute",
        AUTOCRM_RATELIMIT_STORAGE_URL="memory://",
        AUTOCRM_OIDC_ISSUER=sso.issuer,
        AUTOCRM_OIDC_CLIENT_ID=sso.client_id,
        AUTOCRM_OIDC_CLIENT_SECRET=sso.client_secret,
        AUTOCRM_OIDC_BUTTON_LABEL=SSO_BUTTON_LABEL,
        AUTOCRM_SMTP_HOST="127.0.0.1",
        AUTOCRM_SMTP_PORT=str(mailbox.port),
    )


def _start_web(env: dict[str, str], url: str, log_dir: Path) -> processes.Process:
    argv = [sys.executable, "-m", "autocrm.server"]
    web = processes.start("browser-web", argv, log_dir, env, ready=None)

    def answers() -> bool:
        assert web.popen.poll() is None, f"the web server exited:\n{web.log_text()}"
        try:
            return requests.get(f"{url}/login", timeout=2).ok
        except requests.RequestException:
            return False

    try:
        assert wait_until(answers, timeout=SERVER_START_TIMEOUT_S, interval=0.2), (
            f"the web server is not answering at {url}:\n{web.log_text()}"
        )
    except BaseException:
        web.stop()
        raise
    return web


@pytest.fixture(scope="package")
def live_server(
    browser_app: Flask,
    browser_database_url: str,
    redis_url: str,
    live_url: str,
    sso_provider: oidc_provider.Provider,
    mailbox: SmtpServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    """The web server, a Celery worker and beat on the browser database; their logs are copied
    to test-artifacts/browser-logs/<sqlite|postgres>/ afterwards."""
    log_dir = tmp_path_factory.mktemp("browser-logs")
    env = _server_env(browser_database_url, redis_url, live_url, sso_provider, mailbox)
    started: list[processes.Process] = []
    try:
        started.append(
            processes.start_worker(
                "browser-worker", browser_database_url, redis_url, log_dir, env=env
            )
        )
        beat_argv = [
            sys.executable, "-m", "celery", "-A", "workers", "beat", "--loglevel", "INFO",
            "--schedule", str(log_dir / "celerybeat-schedule"),
        ]  # fmt: skip
        started.append(processes.start("browser-beat", beat_argv, log_dir, env, "Starting..."))
        started.append(_start_web(env, live_url, log_dir))
        worker, beat, web = started
        yield LiveServer(live_url, browser_app, web, worker, beat, log_dir)
    finally:
        for process in reversed(started):
            process.stop()
        kept = ARTIFACTS / "browser-logs" / database_kind()
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(log_dir, kept, ignore=shutil.ignore_patterns("celerybeat-schedule*"))


@pytest.fixture(autouse=True)
def server_log_has_no_tracebacks(browser: Browser, live_server: LiveServer) -> Iterator[None]:
    """A traceback in the web server's log while a test ran is a bug (a 500, a failed
    socket handler) even when the page looked fine. (``browser`` first: a missing Chromium
    fails before the stack starts.)"""
    start = len(live_server.web.log_text())
    yield
    new_output = live_server.web.log_text()[start:]
    assert not server_errors(new_output), f"the web server logged a traceback:\n{new_output}"


# eventlet logs a traceback when the browser hangs up mid-response (a page left while its
# assets load): the client went away, the server did nothing wrong.
CLIENT_HUNG_UP = re.compile(r"^(BrokenPipeError|ConnectionResetError)\b")


def server_errors(log: str) -> list[str]:
    """The last line (the exception) of each traceback in ``log`` not caused by a client
    hanging up."""
    errors = []
    for block in log.split("Traceback (most recent call last):")[1:]:
        frames = [line for line in block.splitlines() if line and not line.startswith(" ")]
        exception = frames[0] if frames else block.strip()[:200]
        if not CLIENT_HUNG_UP.match(exception):
            errors.append(exception)
    return errors


@dataclass(frozen=True)
class DemoUsers:
    admin: DemoLogin
    agent: DemoLogin
    customer: DemoLogin


@pytest.fixture(scope="package")
def demo() -> DemoUsers:
    """The seeded demo logins (``demo.agent.email``, ``demo.agent.password``, ``.name``)."""
    by_email = {login.email: login for login in DEMO_LOGINS}
    return DemoUsers(
        admin=by_email["admin@example.com"],
        agent=by_email["agent@example.com"],
        customer=by_email["customer@example.com"],
    )


# -- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    manager = sync_playwright().start()
    try:
        yield manager
    finally:
        manager.stop()


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's chromium package "
            "(`apt-get install -y chromium`, as .ci/run does) or set AUTOCRM_TEST_CHROMIUM. "
            "Playwright's own browser download does not work here.",
            pytrace=False,
        )
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield launched
    finally:
        launched.close()


def _directives(policy: str) -> dict[str, str]:
    pairs = (part.strip().split(None, 1) for part in policy.split(";") if part.strip())
    return {pair[0].lower(): (pair[1] if len(pair) > 1 else "") for pair in pairs}


def csp_problem(policy: str | None) -> str | None:
    """Why a page's Content-Security-Policy does not keep inline and injected scripts out."""
    if not policy:
        return "no Content-Security-Policy header"
    directives = _directives(policy)
    scripts = directives.get("script-src", directives.get("default-src"))
    if scripts is None:
        return f"no script-src or default-src in {policy!r}"
    for weak in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:"):
        if weak in scripts.split():
            return f"script sources allow {weak}: {policy!r}"
    return None


@dataclass
class Watch:
    """What one context's pages did: every request URL, console errors, and problems (each a
    test failure: a request leaving this machine, an uncaught error, a CSP violation, a page
    of ours without a strict CSP)."""

    base_url: str
    requests: list[str] = field(default_factory=list)
    documents: list[tuple[str, int, str | None]] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        context.on("request", self._on_request)
        context.on("response", self._on_response)
        context.on("console", self._on_console)
        context.on("weberror", self._on_web_error)

    def foreign_requests(self) -> list[str]:
        return [url for url in self.requests if not is_local(url)]

    def _on_request(self, request: Request) -> None:
        self.requests.append(request.url)
        if not is_local(request.url):
            self.problems.append(f"request to another host: {request.method} {request.url}")

    def _on_response(self, response: Response) -> None:
        if response.request.resource_type != "document":
            return
        if not response.url.startswith(self.base_url) or urlsplit(response.url).path.startswith(
            "/api/"
        ):
            return
        policy = response.headers.get("content-security-policy")
        self.documents.append((response.url, response.status, policy))
        problem = csp_problem(policy)
        if problem:
            self.problems.append(f"{response.url}: {problem}")

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        self.console_errors.append(message.text)
        if "Content Security Policy" in message.text:
            self.problems.append(f"CSP violation: {message.text}")

    def _on_web_error(self, error: WebError) -> None:
        self.problems.append(f"uncaught JavaScript error: {error.error}")


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in {"data", "blob", "about"}:
        return True
    return parts.hostname in LOCAL_HOSTS


class ContextFactory:
    """``new_context(width=1280, height=800, **options)``: a watched browser context whose
    ``base_url`` is the live server (``page.goto("/login")``). Closed after the test.
    ``new_context.logged_in(email, password, width, height, **options)``: a page in a new
    one, logged in."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.opened: list[tuple[BrowserContext, Watch]] = []

    def __call__(
        self, width: int = DEFAULT_VIEWPORT[0], height: int = DEFAULT_VIEWPORT[1], **options: Any
    ) -> BrowserContext:
        context = self.browser.new_context(
            base_url=self.base_url, viewport={"width": width, "height": height}, **options
        )
        watch = Watch(self.base_url)
        watch.attach(context)
        self.opened.append((context, watch))
        return context

    def logged_in(
        self,
        email: str,
        password: str,
        width: int = DEFAULT_VIEWPORT[0],
        height: int = DEFAULT_VIEWPORT[1],
        **options: Any,
    ) -> Page:
        """A page in a new context, logged in through the login page; it waits PAGE_MS."""
        page = self(width, height, **options).new_page()
        page.set_default_timeout(PAGE_MS)
        log_in(page, email, password)
        return page

    def watch_of(self, context: BrowserContext) -> Watch:
        for opened, watch in self.opened:
            if opened is context:
                return watch
        raise KeyError("that context was not made by new_context")

    def close_all(self) -> list[str]:
        """Close every context; returns the problems their watches saw."""
        problems: list[str] = []
        for context, watch in self.opened:
            context.close()
            problems.extend(watch.problems)
        self.opened.clear()
        return problems


@pytest.fixture
def new_context(browser: Browser, live_server: LiveServer) -> Iterator[ContextFactory]:
    factory = ContextFactory(browser, live_server.url)
    yield factory
    problems = factory.close_all()
    assert not problems, "the browser saw problems:\n" + "\n".join(problems)


@pytest.fixture
def page(new_context: ContextFactory) -> Page:
    """A page in a fresh 1280x800 context (no cookies)."""
    return new_context().new_page()


def log_in(page: Page, email: str, password: str) -> None:
    """Log in through the login page; fails unless it leads away from it."""
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile(r"/login(\?|$)"))


def save_screenshot(page: Page, name: str) -> Path:
    """The whole page as test-artifacts/screenshots/<name>.png (CI keeps test-artifacts)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def login() -> Login:
    return log_in


@pytest.fixture
def screenshot() -> Screenshot:
    return save_screenshot
