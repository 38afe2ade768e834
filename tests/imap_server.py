"""A real IMAP server for tests: Debian's Dovecot (``dovecot-imapd``), started with a
configuration of its own in a temporary directory, on free loopback ports.

Why a real server: the mailbox poller's correctness lives in how IMAP servers actually answer
(UIDs, MOVE, PEEK, error texts, TLS), which a fake would only restate. Each server has its own
users (a passwd-file), mail (maildir under the temporary directory), a self-signed certificate
for ``localhost``/``127.0.0.1`` (``ca_file``, so clients can verify it) and a log file. It
runs as root (CI) or as an ordinary user.

    with running({"support@example.test": "secret"}) as server:
        server.append("support@example.test", raw_bytes)
        ... connect to server.host, server.port (plain/STARTTLS) or server.ssl_port (TLS)
"""

from __future__ import annotations

import contextlib
import datetime
import grp
import imaplib
import ipaddress
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DEFAULT_USERS = {"support@example.test": "support-password"}
STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


@dataclass
class DovecotServer:
    """A running Dovecot; the helpers talk to it over IMAP as a mail client would."""

    host: str
    port: int
    ssl_port: int
    ca_file: str
    users: dict[str, str]
    directory: Path
    log_file: Path
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def add_user(self, user: str, password: str) -> None:
        """A new mail account, usable at once, so each test can have an empty mailbox of its
        own."""
        self.users[user] = password
        _write_user(self.directory / "passwd", user, password)

    def connect(self, user: str) -> imaplib.IMAP4:
        """A logged-in imaplib client over the plain port (loopback, so no TLS needed)."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(user, self.users[user])
        return client

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver ``raw`` into ``folder`` (created if missing), unread, as a mail client's
        APPEND would."""
        with self._session(user) as client:
            if folder.upper() != "INBOX":
                client.create(_quoted(folder))  # fails harmlessly when it exists
            typ, data = client.append(_quoted(folder), "", None, raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND to {folder} failed: {data!r}")

    def list_messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """The raw messages in ``folder``, oldest first (empty if the folder does not exist)."""
        with self._session(user) as client:
            typ, _ = client.select(_quoted(folder), readonly=True)
            if typ != "OK":
                return []
            typ, data = client.uid("SEARCH", "ALL")
            uids = data[0].split() if typ == "OK" and data and data[0] else []
            messages = []
            for uid in uids:
                typ, parts = client.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
                messages.extend(p[1] for p in parts if isinstance(p, tuple))
            return messages

    def folders(self, user: str) -> list[str]:
        """The names of ``user``'s folders, sorted."""
        with self._session(user) as client:
            _, data = client.list()
            names = []
            for line in data:
                # (\HasNoChildren) "." "Processed": the name follows the delimiter.
                match = _LIST_LINE.match(line) if isinstance(line, bytes) else None
                if match:
                    names.append(_unquoted(match["name"].decode()))
            return sorted(names)

    def log(self) -> str:
        """Dovecot's log so far (what to print when a test needs to know why)."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    @contextlib.contextmanager
    def _session(self, user: str) -> Iterator[imaplib.IMAP4]:
        client = self.connect(user)
        try:
            yield client
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                client.logout()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_LIST_LINE = re.compile(rb'\((?P<flags>[^)]*)\) (?:NIL|"(?:[^"\\]|\\.)*") (?P<name>.*)$')


def _unquoted(name: str) -> str:
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return re.sub(r"\\(.)", r"\1", name[1:-1])
    return name


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextlib.contextmanager
def running(users: dict[str, str] | None = None, extra_config: str = "") -> Iterator[DovecotServer]:
    """A Dovecot with ``users`` (address -> password) on free loopback ports, stopped and its
    directory removed on exit. ``extra_config`` is appended to its dovecot.conf (e.g. an
    ``imap_capability`` line, to look like an older server)."""
    users = dict(DEFAULT_USERS if users is None else users)
    directory = Path(tempfile.mkdtemp(prefix="autocrm-dovecot-"))
    try:
        server = _configure(directory, users, extra_config)
        server._process = _start(server)
        try:
            yield server
        finally:
            _stop(server._process)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _configure(directory: Path, users: dict[str, str], extra_config: str) -> DovecotServer:
    as_root = os.geteuid() == 0
    if as_root:
        # Dovecot's unprivileged processes (dovecot, dovenull) must reach the files in here.
        directory.chmod(0o755)
    cert, key = _write_certificate(directory)
    users_dir = directory / "passwd"
    users_dir.mkdir()
    for user, password in users.items():
        _write_user(users_dir, user, password)
    owner = _mail_owner()
    for name in ("mail", "home"):
        (directory / name).mkdir()
        os.chown(directory / name, *owner)
    server = DovecotServer(
        host="127.0.0.1",
        port=free_port(),
        ssl_port=free_port(),
        ca_file=str(cert),
        users=users,
        directory=directory,
        log_file=directory / "dovecot.log",
    )
    conf = _config_text(server, cert, key, users_dir, owner, as_root)
    (directory / "dovecot.conf").write_text(conf + extra_config + "\n")
    return server


def _write_user(users_dir: Path, user: str, password: str) -> None:
    """One passwd-file per user: Dovecot rereads a changed file at most once a second, but
    reads a new one at its first login, so a user added during a run can log in at once.
    Written under another name and renamed: Dovecot never reads a half-written file."""
    if any(c in user + password for c in ":/\n\r") or user.startswith("."):
        raise ValueError("test users and passwords may not contain ':', '/' or line breaks")
    scratch = users_dir / f".{user}.new"
    scratch.write_text(f"{user}:{{PLAIN}}{password}\n")
    scratch.chmod(0o644)
    scratch.replace(users_dir / user)


def _mail_owner() -> tuple[int, int]:
    """Who owns the mail: us, or ``nobody`` when we are root (Dovecot refuses mail as root)."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def _config_text(
    server: DovecotServer,
    cert: Path,
    key: Path,
    users_dir: Path,
    owner: tuple[int, int],
    as_root: bool,
) -> str:
    directory = server.directory
    uid, gid = owner
    me = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    if as_root:
        privileges = ""
    else:
        # Without root nothing can switch users or chroot: every process runs as us.
        privileges = f"""
default_login_user = {me}
default_internal_user = {me}
default_internal_group = {group}
service imap-login {{
  chroot =
}}
service anvil {{
  chroot =
}}
service auth {{
  user = {me}
}}
service auth-worker {{
  user = {me}
}}
"""
    return f"""# Written by tests/imap_server.py for one test server.
instance_name = autocrm-test-{server.port}
base_dir = {directory}/run
state_dir = {directory}/state
listen = {server.host}
protocols = imap
log_path = {server.log_file}
info_log_path = {server.log_file}
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
# A refused login answers at once: tests of wrong passwords need not wait.
auth_failure_delay = 0
first_valid_uid = {uid}
last_valid_uid = 0
first_valid_gid = {gid}
mail_location = maildir:{directory}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users_dir}/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={directory}/home/%u
}}
# No growing delay for logins after a refused one (Dovecot's auth penalty): tests refuse
# passwords on purpose, and the next test must not wait for it.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = {server.host}
    port = {server.port}
  }}
  inet_listener imaps {{
    address = {server.host}
    port = {server.ssl_port}
    ssl = yes
  }}
}}
{privileges}"""


def _write_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1; clients trust it as a CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _signing_key_usage() -> x509.KeyUsage:
    """Signatures (TLS) and certificate signing (it is its own CA)."""
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True,
        crl_sign=False, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _start(server: DovecotServer) -> subprocess.Popen[bytes]:
    conf = server.directory / "dovecot.conf"
    output = (server.directory / "dovecot.out").open("wb")
    process = subprocess.Popen(  # noqa: S603 (a fixed binary with our own config)
        [DOVECOT, "-F", "-c", str(conf)],
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output.close()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _greets(server.host, server.port) and _greets(server.host, server.ssl_port, tls=True):
            return process
        time.sleep(0.05)
    _stop(process)
    output_text = (server.directory / "dovecot.out").read_text(errors="replace")
    raise RuntimeError(f"Dovecot did not start:\n{output_text}\n{server.log()}")


def _greets(host: str, port: int, tls: bool = False) -> bool:
    """True once the port answers with an IMAP greeting."""
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            if tls:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                with context.wrap_socket(sock) as wrapped:
                    return wrapped.recv(64).startswith(b"* OK")
            return sock.recv(64).startswith(b"* OK")
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the master, which stops its children; the whole group if it hangs."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)
