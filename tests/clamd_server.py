"""A real ClamAV daemon for tests: ``running()`` starts ``clamd`` and yields its URL.

freshclam cannot download ClamAV's signatures here (no network), and the tests need a file
that is "malware" without shipping any: the daemon gets its own database folder holding one
MD5 signature (``.hdb``: ``md5:size:name``) of ``INFECTED_PAYLOAD``, its own ``clamd.conf``
(TCP on a free loopback port, no local socket, in the foreground) and its own temporary
folder, all in a temporary directory removed afterwards. Debian's ``clamav-daemon`` package
provides the binary (``.ci/run`` installs it).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from autocrm.files.scanning import ClamdScanner
from tests.processes import Process, free_port

SIGNATURE = "AutoCRM.Test.Payload"
# Plain text (an allowed type), found by its MD5 signature only in this daemon's database.
INFECTED_PAYLOAD = b"AutoCRM malware-scan test payload: quarantine me, never serve me.\n"
STARTUP_TIMEOUT_S = 60.0


def clamd_binary() -> str:
    found = shutil.which("clamd") or shutil.which("clamd", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError("clamd is not installed: apt-get install clamav-daemon")
    return found


def _write_database(folder: Path) -> None:
    folder.mkdir()
    md5 = hashlib.md5(INFECTED_PAYLOAD).hexdigest()  # noqa: S324 (ClamAV's .hdb format)
    (folder / "autocrm-test.hdb").write_text(f"{md5}:{len(INFECTED_PAYLOAD)}:{SIGNATURE}\n")


def _write_config(root: Path, port: int) -> Path:
    scratch = root / "tmp"
    scratch.mkdir()
    config = root / "clamd.conf"
    config.write_text(
        "\n".join(
            [
                "Foreground yes",
                f"TCPSocket {port}",
                "TCPAddr 127.0.0.1",
                f"DatabaseDirectory {root / 'db'}",
                f"TemporaryDirectory {scratch}",
                f"LogFile {root / 'clamd.log'}",
                "LogTime yes",
                "StreamMaxLength 100M",
                "",
            ]
        )
    )
    return config


@contextlib.contextmanager
def running() -> Iterator[str]:
    """A clamd answering on ``tcp://127.0.0.1:<port>`` inside the block; stopped after."""
    with tempfile.TemporaryDirectory(prefix="autocrm-clamd-") as directory:
        root = Path(directory)
        _write_database(root / "db")
        port = free_port()
        config = _write_config(root, port)
        output = root / "clamd.out"
        with output.open("wb") as out:
            popen = subprocess.Popen(  # noqa: S603 (fixed argv)
                [clamd_binary(), "-c", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                process_group=0,
            )
        process = Process("clamd", popen, output)
        url = f"tcp://127.0.0.1:{port}"
        try:
            _wait_for_pong(process, ClamdScanner(url, timeout=5))
            yield url
        finally:
            process.stop()


def _wait_for_pong(process: Process, scanner: ClamdScanner) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"clamd exited:\n{process.log_text()}")
        if scanner.ping():
            return
        time.sleep(0.1)
    raise RuntimeError(f"clamd did not answer PING within {STARTUP_TIMEOUT_S}s")
