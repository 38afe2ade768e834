"""The optional malware scan of uploads: ClamAV's daemon, behind a small scanner interface.

Scanners: ``NoScanner`` (the default: nothing is scanned, files are served as uploaded) and
``ClamdScanner``, chosen by ``AUTOCRM_CLAMD_URL`` (``tcp://host:port`` or
``unix:///run/clamav/clamd.ctl``). It speaks clamd's INSTREAM command itself (a dozen lines of
socket code; no client library is maintained well enough to pin): the bytes go in chunks, each
after its 4-byte length, and clamd answers ``stream: OK`` or ``stream: <signature> FOUND``.

With a scanner, an upload is ``pending`` when its transaction commits; after the commit a
worker task (``do_scan``) streams the file from storage to clamd and records the verdict:
- ``clean``: served from then on.
- ``infected``: quarantined. Every attachment with the same content is marked (the bytes are
  one blob), never served again, and each one on a ticket leaves an ``attachment.quarantined``
  entry in its trail (one found infected before it was sent, when it is sent: ``attach``
  lets it go with its message, so the text is not lost, and notes it). The blob is kept in
  storage, unserved, so that an admin can look into a false positive (ClamAV has them); it
  goes when its attachments do, as any blob does.
- the scanner unreachable, or erring: retried with a growing delay (``retry_delay``) by the
  beat's sweep (``do_scan_due``), which also picks up a scan whose task was lost; after
  ``MAX_ATTEMPTS`` it is ``failed``, shown to admins on the storage page, and the file stays
  withheld: the setting promises files are scanned before anyone downloads them, and a
  scanner outage must not quietly turn that off. An admin can scan failed files again.

A pending or failed file answers 409 ("being scanned", "could not be scanned"), an infected
one 410 (``check_servable``); with scanning turned off again, only infected ones are refused.
The scan holds no database transaction while it runs (a worker's transaction on SQLite holds
the write lock), so two deliveries may both scan; the verdict is written once, to a row still
pending.
"""

from __future__ import annotations

import itertools
import logging
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import func, or_, select, update

from autocrm import aftercommit, database, policies
from autocrm.columns import utcnow
from autocrm.errors import Conflict, DomainError, Forbidden
from autocrm.events import relay
from autocrm.events.emit import emit
from autocrm.events.kinds import AttachmentQuarantined
from autocrm.extensions import db
from autocrm.files import storage as blobs
from autocrm.files.models import Attachment, ScanStatus
from autocrm.people.models import User
from autocrm.transaction import rolls_back_on_error

log = logging.getLogger(__name__)

SCAN_TASK = "workers.tasks.scan_attachment"
# A task that has not written its verdict within this long is taken as lost and sent again.
LEASE = timedelta(minutes=5)
# Retries at 30 s, 1, 2, 4, 8, 16 and 30 minutes: about an hour of scanner outage, then failed.
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(minutes=30)
CHUNK_BYTES = 64 * 1024
MAX_RESULT = 255


class ScanFailed(Exception):
    """The scanner could not give a verdict (unreachable, timed out, or answered an error)."""


@dataclass(frozen=True)
class Verdict:
    signature: str | None  # what was found; None: clean

    @property
    def infected(self) -> bool:
        return self.signature is not None


class Scanner(Protocol):
    enabled: bool
    description: str

    def scan(self, chunks: Iterable[bytes]) -> Verdict:
        """The verdict on the bytes; ScanFailed when there is none."""
        ...


class NoScanner:
    enabled = False
    description = "Files are not scanned for malware (AUTOCRM_CLAMD_URL not set)."

    def scan(self, chunks: Iterable[bytes]) -> Verdict:
        # Reached only when the web processes have a scanner and this worker has none: a
        # misconfiguration that must not pass files as clean (it ends, visibly, as failed).
        raise ScanFailed("This worker has no AUTOCRM_CLAMD_URL; set it as on the web processes.")


class ClamdScanner:
    """ClamAV's daemon over TCP or a unix socket."""

    enabled = True

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme == "tcp" and parts.hostname and parts.port:
            self.family, self.address = socket.AF_INET, (parts.hostname, parts.port)
        elif parts.scheme == "unix" and parts.path:
            self.family, self.address = socket.AF_UNIX, parts.path  # type: ignore[assignment]
        else:
            raise ValueError(
                f"AUTOCRM_CLAMD_URL must be tcp://host:port or unix:///path, not {url!r}."
            )
        self.url = url
        self.timeout = timeout
        self.description = f"Files are scanned for malware by ClamAV at {url}."

    def _connect(self) -> socket.socket:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.address)
        except OSError:
            sock.close()
            raise
        return sock

    def _command(self, command: bytes, chunks: Iterable[bytes] = ()) -> str:
        """Send a null-terminated command (``z`` prefix) with any chunks; clamd's answer."""
        try:
            with self._connect() as sock:
                try:
                    sock.sendall(b"z" + command + b"\0")
                    for chunk in chunks:
                        if chunk:
                            sock.sendall(struct.pack("!L", len(chunk)) + chunk)
                    if command == b"INSTREAM":
                        sock.sendall(struct.pack("!L", 0))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # clamd stops reading when a limit is passed; its answer says which
                return _read_answer(sock)
        except OSError as exc:
            raise ScanFailed(f"clamd at {self.url}: {exc}") from exc

    def ping(self) -> bool:
        try:
            return self._command(b"PING") == "PONG"
        except ScanFailed:
            return False

    def scan(self, chunks: Iterable[bytes]) -> Verdict:
        answer = self._command(b"INSTREAM", chunks)
        if answer.endswith("ERROR") or not answer.startswith("stream:"):
            raise ScanFailed(f"clamd at {self.url}: {answer or 'no answer'}")
        result = answer.removeprefix("stream:").strip()
        if result == "OK":
            return Verdict(None)
        if result.endswith(" FOUND"):
            return Verdict(result.removesuffix(" FOUND").strip())
        raise ScanFailed(f"clamd at {self.url}: {answer}")


def _read_answer(sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\0"):
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data.rstrip(b"\0").decode("utf-8", "replace").strip()


def scanner_from_config(config: Mapping[str, Any]) -> Scanner:
    url = config.get("AUTOCRM_CLAMD_URL")
    return ClamdScanner(url) if url else NoScanner()


def current() -> Scanner:
    """The app's scanner (``create_app`` builds it from the settings)."""
    scanner: Scanner = current_app.extensions["autocrm.scanner"]
    return scanner


# -- serving -----------------------------------------------------------------------------------


class Quarantined(DomainError):
    status_code = 410


def check_servable(attachment: Attachment) -> None:
    """Raise unless the file may be downloaded: 409 while it waits for its scan (or could not
    be scanned), 410 once malware was found in it."""
    name = attachment.filename
    status = attachment.scan_status
    if status != ScanStatus.INFECTED and not current().enabled:
        return  # scanning was turned off: files still waiting are served as unscanned ones
    if status == ScanStatus.PENDING:
        raise Conflict(
            f"{name} is being scanned for malware; try again in a moment.",
            {"file": [f"{name}: being scanned."]},
            scan_status=status.value,
        )
    if status == ScanStatus.FAILED:
        raise Conflict(
            f"{name} could not be scanned for malware, so it is withheld; an admin can scan "
            "it again.",
            {"file": [f"{name}: could not be scanned."]},
            scan_status=status.value,
        )
    if status == ScanStatus.INFECTED:
        raise Quarantined(
            f"{name} contains malware ({attachment.scan_result}) and is quarantined.",
            {"file": [f"{name}: quarantined."]},
            scan_status=status.value,
        )


# -- scanning ----------------------------------------------------------------------------------


def queue_scans(attachments: Iterable[Attachment]) -> None:
    """In the upload's transaction: with a scanner, the files wait for their scan, sent to a
    worker after commit (flushes, for the ids)."""
    if not current().enabled:
        return
    due = utcnow() + LEASE
    rows = list(attachments)
    for attachment in rows:
        attachment.scan_status = ScanStatus.PENDING
        attachment.scan_due_at = due
    db.session.flush()
    for attachment in rows:
        aftercommit.add("files.scan", attachment.id)


def _send_scan_tasks(ids: list[int], *, sweeping: bool = False) -> None:
    """After commit: one task per file, sent by the relay. A broker that is down loses
    nothing: the sweep (``do_scan_due``, which tries during the relay's back-off too) sends
    the scans again once their lease is over."""
    relay.after_commit(
        [relay.Message(SCAN_TASK, (attachment_id,)) for attachment_id in ids], sweeping=sweeping
    )


def retry_delay(attempts: int) -> timedelta:
    """How long after its ``attempts``-th failure a scan is tried again."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_RETRY)


def do_scan(attachment_id: int) -> ScanStatus | None:
    """A worker: scan one pending file and record the verdict. None when there was nothing to
    do (gone, or scanned already); otherwise the status it now has."""
    with database.read_only():
        attachment = db.session.get(Attachment, attachment_id, populate_existing=True)
        pending = attachment is not None and attachment.scan_status == ScanStatus.PENDING
        sha256 = attachment.sha256 if attachment is not None else ""
        db.session.rollback()
    if not pending:
        return None
    verdict, error = None, None
    try:
        verdict = _scan_blob(sha256)
    except (ScanFailed, blobs.StorageUnavailable) as exc:
        error = str(exc)
    except KeyError:
        error = "The file is missing from storage."
    return _record(attachment_id, verdict, error)


def _scan_blob(sha256: str) -> Verdict:
    chunks = iter(blobs.current().open(sha256))
    # Started before the scan, so that closing it closes the stored file even when the scan
    # stops before reading (clamd down): a generator closed unstarted leaves its file open.
    first = next(chunks, b"")
    try:
        return current().scan(itertools.chain([first], chunks))
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


@rolls_back_on_error
def _record(attachment_id: int, verdict: Verdict | None, error: str | None) -> ScanStatus | None:
    attachment = db.session.get(
        Attachment, attachment_id, with_for_update=True, populate_existing=True
    )
    if attachment is None or attachment.scan_status != ScanStatus.PENDING:
        db.session.commit()
        return None
    if verdict is None:
        _failed_attempt(attachment, error or "no verdict")
    elif verdict.infected:
        _quarantine(attachment.sha256, verdict.signature or "")
    else:
        attachment.scan_status = ScanStatus.CLEAN
        attachment.scan_result = None
        attachment.scan_due_at = None
    status = attachment.scan_status
    db.session.commit()
    return status


def _failed_attempt(attachment: Attachment, error: str) -> None:
    attachment.scan_attempts += 1
    attachment.scan_result = error[:MAX_RESULT]
    if attachment.scan_attempts >= MAX_ATTEMPTS:
        log.warning("attachment %s: scan failed for good: %s", attachment.id, error)
        attachment.scan_status = ScanStatus.FAILED
        attachment.scan_due_at = None
    else:
        log.warning("attachment %s: scan failed, retried later: %s", attachment.id, error)
        attachment.scan_due_at = utcnow() + retry_delay(attachment.scan_attempts)


def _quarantine(sha256: str, signature: str) -> None:
    """Every attachment of these bytes is infected; each on a ticket says so in its trail."""
    found = db.session.scalars(
        select(Attachment)
        .where(Attachment.sha256 == sha256, Attachment.scan_status != ScanStatus.INFECTED)
        .order_by(Attachment.id)
        .with_for_update()
    )
    for attachment in found:
        log.warning("attachment %s quarantined: %s", attachment.id, signature)
        attachment.scan_status = ScanStatus.INFECTED
        attachment.scan_result = signature[:MAX_RESULT]
        attachment.scan_due_at = None
        note_quarantined([attachment])


def note_quarantined(attachments: Iterable[Attachment]) -> None:
    """The trail entry of each infected file on a ticket: when the verdict lands, or, for a
    file found infected before it was sent, when it is attached."""
    for attachment in attachments:
        if attachment.scan_status == ScanStatus.INFECTED and attachment.ticket_id is not None:
            emit(
                AttachmentQuarantined(
                    ticket_id=attachment.ticket_id,
                    attachment_id=attachment.id,
                    message_id=attachment.message_id,
                    filename=attachment.filename,
                    signature=attachment.scan_result or "",
                )
            )


@rolls_back_on_error
def do_scan_due(limit: int = 500) -> int:
    """Beat: send the scans that are due (a retry, or a lost task) to the workers, each under
    a new lease. Returns how many."""
    if not current().enabled:
        return 0
    now = utcnow()
    due = select(Attachment.id).where(
        Attachment.scan_status == ScanStatus.PENDING,
        or_(Attachment.scan_due_at.is_(None), Attachment.scan_due_at <= now),
    )
    ids = list(db.session.scalars(due.order_by(Attachment.scan_due_at).limit(limit)))
    if ids:
        db.session.execute(
            update(Attachment).where(Attachment.id.in_(ids)).values(scan_due_at=now + LEASE)
        )
    db.session.commit()
    _send_scan_tasks(ids, sweeping=True)
    return len(ids)


@rolls_back_on_error
def do_rescan_failed(actor: User) -> int:
    """Admins: scan the files whose scan failed again, from the first attempt."""
    if not policies.can_view_storage_usage(actor):
        raise Forbidden("Only admins may scan files again.")
    ids = list(
        db.session.scalars(select(Attachment.id).where(Attachment.scan_status == ScanStatus.FAILED))
    )
    if ids:
        db.session.execute(
            update(Attachment)
            .where(Attachment.id.in_(ids), Attachment.scan_status == ScanStatus.FAILED)
            .values(scan_status=ScanStatus.PENDING, scan_attempts=0, scan_due_at=utcnow() + LEASE)
        )
        for attachment_id in ids:
            aftercommit.add("files.scan", attachment_id)
    db.session.commit()
    return len(ids)


def scan_summary(actor: User, listed: int = 50) -> dict[str, Any]:
    """For admins: whether files are scanned, how many are in each state, and the files
    withheld for good (infected or failed), newest first."""
    if not policies.can_view_storage_usage(actor):
        raise Forbidden("Only admins see the malware scan.")
    counts = dict(
        db.session.execute(
            select(Attachment.scan_status, func.count(Attachment.id)).group_by(
                Attachment.scan_status
            )
        ).all()
    )
    withheld = db.session.scalars(
        select(Attachment)
        .where(Attachment.scan_status.in_([ScanStatus.INFECTED, ScanStatus.FAILED]))
        .order_by(Attachment.created_at.desc(), Attachment.id.desc())
        .limit(listed)
    )
    return {
        "enabled": current().enabled,
        "description": current().description,
        "counts": {status.value: int(counts.get(status, 0)) for status in ScanStatus},
        "withheld": list(withheld),
    }


def install() -> None:
    aftercommit.register("files.scan", _send_scan_tasks)
