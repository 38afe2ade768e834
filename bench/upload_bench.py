"""Peak memory of a web process while it takes a 100 MB upload (issue 12: uploads stream).

Starts AutoCRM under ``gunicorn -w 1 -k gthread`` on SQLite and an embedded Redis in a temp
folder, warms the worker up with a small upload, resets its peak-RSS counter
(``/proc/<pid>/clear_refs``), uploads one file of ``--mb`` megabytes through
``POST /api/uploads`` and prints the worker's resident memory before and its peak during the
upload (``VmHWM``). ``--s3`` stores to S3 (moto's server, started on a free port) instead of
the local folder. Linux only. Run: ``.venv/bin/python bench/upload_bench.py [--mb 100] [--s3]``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autocrm import embedded_redis  # noqa: E402 (after the path is set)

PASSWORD = "bench password 42"  # noqa: S105 (a throwaway account in a temp database)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def worker_pid(master: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def start_s3(env: dict[str, str], folder: Path) -> subprocess.Popen[bytes]:
    """moto's S3 server with a bucket, and the settings that point AutoCRM at it."""
    import boto3

    port = free_port()
    server = subprocess.Popen(  # noqa: S603 (fixed argv)
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=(folder / "s3.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    env.update(
        AUTOCRM_STORAGE="s3", AUTOCRM_S3_BUCKET="bench", AUTOCRM_S3_ENDPOINT_URL=endpoint,
        AUTOCRM_S3_REGION="us-east-1", AUTOCRM_S3_ACCESS_KEY_ID="bench",
        AUTOCRM_S3_SECRET_ACCESS_KEY="bench",  # noqa: S106 (moto accepts any)
    )  # fmt: skip
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="bench", aws_secret_access_key="bench",  # noqa: S106
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            client.create_bucket(Bucket="bench")
            return server
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--s3", action="store_true", help="store to a local S3 server (moto)")
    args = parser.parse_args()
    running: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            measure(Path(tmp), args.mb, args.s3, running)
        finally:
            for process in reversed(running):
                process.terminate()
                process.wait(timeout=30)


def measure(folder: Path, mb: int, s3: bool, running: list[subprocess.Popen[bytes]]) -> None:
    size = mb * 2**20
    redis_process, redis_url = embedded_redis.start(folder)
    running.append(redis_process)
    env = {
        **os.environ,
        "AUTOCRM_INSTANCE_PATH": str(folder),
        "AUTOCRM_REDIS_URL": redis_url,
        "AUTOCRM_SECRET_KEY": "bench",
        "AUTOCRM_MAX_UPLOAD_BYTES": str(size + 2**20),
        "AUTOCRM_MAX_ATTACHMENTS_BYTES": str(size + 2**20),
    }
    python = sys.executable
    if s3:
        running.append(start_s3(env, folder))
    flask = [python, "-m", "flask", "--app", "wsgi"]
    for argv in (
        [*flask, "db", "upgrade"],
        [*flask, "create-user", "--email", "bench@example.test", "--password", PASSWORD,
         "--role", "customer"],
    ):  # fmt: skip
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, check=False)  # noqa: S603
        if done.returncode:
            raise SystemExit(f"{' '.join(argv[3:])} failed:\n{done.stderr.decode()}")
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 (fixed argv)
        [python, "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", "4",
         "-b", f"127.0.0.1:{port}", "--timeout", "300", "wsgi:app"],
        cwd=REPO, env=env, stdout=(folder / "gunicorn.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    running.append(server)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{base}/login", timeout=10)
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    token = requests.post(
        f"{base}/api/auth/token",
        json={"email": "bench@example.test", "password": PASSWORD},
        timeout=30,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    warm = requests.post(
        f"{base}/api/uploads", headers=headers, files={"files": ("warm.txt", b"w" * 4096)},
        timeout=60,
    )  # fmt: skip
    warm.raise_for_status()
    pid = worker_pid(server.pid)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak to the current RSS
    baseline = status_kb(pid, "VmRSS")
    payload = folder / "big.bin"
    with payload.open("wb") as out:
        for _ in range(mb):
            out.write(os.urandom(2**20))
    started = time.monotonic()
    with payload.open("rb") as body:
        answer = requests.post(
            f"{base}/api/uploads", headers=headers, files={"files": ("big.bin", body)},
            timeout=600,
        )  # fmt: skip
    took = time.monotonic() - started
    answer.raise_for_status()
    peak = status_kb(pid, "VmHWM")
    where = "S3 (moto)" if s3 else "the local folder"
    print(f"upload of {mb} MB to {where}: HTTP {answer.status_code} in {took:.1f} s")
    print(f"web worker RSS before: {baseline / 1024:.1f} MiB")
    print(f"web worker peak RSS during the upload: {peak / 1024:.1f} MiB")
    print(f"peak minus before: {(peak - baseline) / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
