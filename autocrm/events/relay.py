"""The relay: this process's one sender of committed work to Celery.

Every task handed to Celery because a transaction committed goes through here: outbox events
(``outbox``), malware scans (``files.scanning``), webhook deliveries (``webhooks.deliveries``)
and dropdown-field index builds (``fields.indexes``). Their after-commit consumers only call
``after_commit`` (a queue append of small ``Message``s: a task name, its id arguments and its
queue), so a request or a socket handler does not wait for the broker after its commit. One
daemon thread per process (started on first use; a forked child, as gunicorn's and Celery's
pool processes are, starts its own: the parent's thread does not survive a fork) drains the
queue and publishes what has gathered, in submission order, over one producer connection per
batch (``send``). Under eventlet or gevent the thread is a green thread, and the queue
(``queue.Queue``: pure Python over ``threading``'s locks, which they patch) blocks only it.

Nothing committed is lost, and the relay does not have to see to it: each kind's rows are in
the database before their messages are submitted, and each kind has its own beat sweep that
sends again what is still undone (outbox events unprocessed after ``outbox.REPUBLISH_AFTER``;
webhook deliveries and scans whose lease ran out; field indexes still missing, every minute):
messages queued here when the process died, or dropped while the broker was down (or while
``QUEUE_LIMIT`` were waiting for one that hangs). After a failed publish ``send`` backs off for
``BACKOFF_SECONDS``, so a dead broker costs one failed attempt, not one per change; a sweep's
own hand-off (``sweeping``) is still tried then, and its success ends the back-off. At orderly
exit (``atexit``; Celery's pool processes exit without it, hence ``worker_process_shutdown``)
what is queued is flushed for at most ``EXIT_FLUSH_SECONDS``. ``flush`` waits for what was
submitted before it (tests use it to look at the published messages).
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from typing import Any, NamedTuple

from celery import Celery
from celery.signals import worker_process_shutdown
from flask import current_app

log = logging.getLogger(__name__)

# After a failed publish this process leaves messages to the sweeps for a while, so that a dead
# broker costs one failed connection attempt, not one per change.
BACKOFF_SECONDS = 10.0
_backoff_until = 0.0
EXIT_FLUSH_SECONDS = 2.0
BATCH = 500  # at most this many submissions go out on one producer checkout
# Submissions beyond this many waiting (a broker that hangs instead of refusing) are dropped
# for the sweep rather than held in memory.
QUEUE_LIMIT = 10_000


class Message(NamedTuple):
    """A task to publish: its name, its arguments (ids: the task reads the rest from the
    database) and its queue (None: the task's route in ``celeryconfig``, else the default)."""

    task: str
    args: tuple[int | str, ...] = ()
    queue: str | None = None


# A submission: the Celery app to publish with (a test builds one whose broker is down), its
# messages and whether a sweep sent them (``send``'s ``sweeping``); or a flush marker, set once
# everything before it was sent.
_Batch = tuple[Celery, list[Message], bool]
_Item = _Batch | threading.Event

_lock = threading.Lock()
_pid = 0
_queue: queue.Queue[_Item] = queue.Queue()  # replaced on first use in each process


def send(celery: Celery, messages: list[Message], *, sweeping: bool = False) -> int:
    """Publish, in order, over one producer connection; returns how many went. Never raises:
    what fails is left to the sweep. During the back-off nothing is tried, except by the
    sweep itself (``sweeping``), whose success ends it."""
    global _backoff_until
    if not sweeping and time.monotonic() < _backoff_until:
        return 0
    sent = 0
    try:
        with celery.producer_or_acquire() as producer:
            for message in messages:
                routing = {} if message.queue is None else {"queue": message.queue}
                celery.send_task(
                    message.task,
                    args=list(message.args),
                    retry=False,
                    producer=producer,
                    **routing,
                )
                sent += 1
        _backoff_until = 0.0
    except Exception as exc:  # the broker's errors vary by transport; all mean "try again later"
        _backoff_until = time.monotonic() + BACKOFF_SECONDS
        log.warning(
            "broker unavailable (%s): %d task(s) left for their sweeps (%s)",
            exc,
            len(messages) - sent,
            _names(messages[sent:]),
        )
    return sent


def after_commit(messages: list[Message], *, sweeping: bool = False) -> None:
    """From an after-commit consumer (or a sweep, once it committed: ``sweeping``): queue
    ``messages`` for the relay thread, to publish with the app's Celery; returns at once.
    Nothing when the app does not publish (``AUTOCRM_OUTBOX_RELAY`` off)."""
    if messages and current_app.config["AUTOCRM_OUTBOX_RELAY"]:
        submit(current_app.extensions["celery"], messages, sweeping=sweeping)


def submit(celery: Celery, messages: list[Message], *, sweeping: bool = False) -> None:
    """Queue committed work for the relay thread; returns at once."""
    try:
        _started().put_nowait((celery, messages, sweeping))
    except queue.Full:
        log.warning(
            "relay queue full: %d task(s) left for their sweeps (%s)",
            len(messages),
            _names(messages),
        )


def _names(messages: list[Message]) -> str:
    return ", ".join(sorted({message.task for message in messages}))


def flush(timeout: float = 10.0) -> bool:
    """Wait until what was submitted before this call has been sent (or dropped by the
    back-off). False if ``timeout`` passed first."""
    if _pid != os.getpid():
        return True  # nothing was submitted in this process
    done = threading.Event()
    try:
        _queue.put(done, timeout=timeout)
    except queue.Full:
        return False
    return done.wait(timeout)


def _started() -> queue.Queue[_Item]:
    global _pid, _queue
    if _pid == os.getpid():
        return _queue
    with _lock:
        if _pid != os.getpid():  # first use here, or a forked child (its parent's queue)
            _queue = queue.Queue(QUEUE_LIMIT)
            thread = threading.Thread(
                target=_run, args=(_queue,), name="autocrm-outbox-relay", daemon=True
            )
            thread.start()
            _pid = os.getpid()
    return _queue


def _run(items: queue.Queue[_Item]) -> None:
    while True:
        batch = [items.get()]
        while len(batch) < BATCH:
            try:
                batch.append(items.get_nowait())
            except queue.Empty:
                break
        for celery, messages, sweeping in _grouped(batch):
            try:
                send(celery, messages, sweeping=sweeping)
            except Exception:  # send never raises; if it did, the thread must live on
                log.exception("relaying %d task(s) failed", len(messages))
        for item in batch:
            if isinstance(item, threading.Event):
                item.set()


def _grouped(batch: list[_Item]) -> list[_Batch]:
    """Consecutive submissions for the same Celery app (and alike in ``sweeping``) as one
    list, in order."""
    groups: list[_Batch] = []
    for item in batch:
        if isinstance(item, threading.Event):
            continue
        celery, messages, sweeping = item
        if groups and groups[-1][0] is celery and groups[-1][2] == sweeping:
            groups[-1][1].extend(messages)
        else:
            groups.append((celery, list(messages), sweeping))
    return groups


def _flush_at_exit(**_kwargs: Any) -> None:
    if not flush(EXIT_FLUSH_SECONDS):
        log.warning("exiting with tasks unsent: their sweeps send them")


atexit.register(_flush_at_exit)
worker_process_shutdown.connect(_flush_at_exit, weak=False)
