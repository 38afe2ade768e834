"""A Celery worker whose first ``ticket.created`` event stalls, for the crash tests.

``python -m tests.slow_worker worker ...`` starts the normal worker (``workers``) with one
extra, test-only handler of ``ticket.created``, added to the handler table in this process
only. It runs after the real ones, so when it stalls the automation's effects (assignment,
notifications) are written but not committed. It appends ``<pid> <event id>`` to the file named
by ``AUTOCRM_TEST_STALL_LOG`` each time it runs, and sleeps ``AUTOCRM_TEST_STALL_SECONDS`` the
first time only (the file did not exist yet), so the test can kill the process mid-task and a
second run, anywhere, goes through.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import workers
from autocrm.events.handlers import HANDLERS
from autocrm.events.kinds import Event

STALL_LOG = Path(os.environ["AUTOCRM_TEST_STALL_LOG"])
STALL_SECONDS = float(os.environ.get("AUTOCRM_TEST_STALL_SECONDS", "60"))


def stall_the_first_time(event: Event) -> None:
    first = not STALL_LOG.exists()
    with STALL_LOG.open("a") as log:
        log.write(f"{os.getpid()} {event.id}\n")
    if first:
        time.sleep(STALL_SECONDS)


if __name__ == "__main__":
    HANDLERS["ticket.created"] = [
        *HANDLERS["ticket.created"],
        f"{__spec__.name}.stall_the_first_time",
    ]
    workers.celery.worker_main(sys.argv[1:])
