"""The SQLite writers' queue in one process hands the write lock over in the order writers came:
with ``threading.Lock`` a writer that had waited longest could keep losing it to newcomers,
which is what made the slowest creates under 16 clients take seconds (bench/api_bench.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from autocrm.database import _TurnLock


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _queued(lock: _TurnLock, count: int) -> Callable[[], bool]:
    return lambda: len(lock._waiting) == count


def test_waiting_writers_get_the_lock_in_the_order_they_asked() -> None:
    lock = _TurnLock()
    assert lock.acquire(1)
    served: list[int] = []

    def writer(n: int) -> None:
        assert lock.acquire(10)
        served.append(n)
        lock.release()

    threads = []
    for n in range(8):
        thread = threading.Thread(target=writer, args=(n,))
        thread.start()
        threads.append(thread)
        _wait_until(_queued(lock, n + 1))  # in line before the next one comes
    lock.release()
    for thread in threads:
        thread.join(10)
    assert served == list(range(8))
    assert lock.acquire(0.01), "free again once everyone was served"


def test_a_writer_that_gives_up_leaves_the_queue_and_the_next_one_is_served() -> None:
    lock = _TurnLock()
    assert lock.acquire(1)
    assert lock.acquire(0.01) is False  # timed out while another held it
    assert not lock._waiting
    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(lock.acquire(10)))
    thread.start()
    _wait_until(_queued(lock, 1))
    lock.release()
    thread.join(10)
    assert got == [True]
