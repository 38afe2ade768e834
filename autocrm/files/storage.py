"""Where attachment bytes live: a small interface and its two implementations.

Content is addressed by its SHA-256 (hex): ``put`` takes the bytes as a stream of chunks,
hashes them while storing, and keeps them under their hash, so the same file attached twice
is stored once. Nothing is held in memory whole:

- ``LocalStorage``: a folder (the instance folder's ``attachments/`` by default). A file is
  written to a temporary file in the same folder and renamed into place when complete, so an
  interrupted upload leaves nothing half-stored under a key.
- ``S3Storage``: an S3-compatible bucket (AWS S3, MinIO, Ceph, R2: ``endpoint_url``), what
  several web processes and workers on different hosts share. The stream is spooled to a
  temporary file while it is hashed (the key is known only at the end), then sent from the
  file by name in parts, never whole in memory (handed a stream, boto3 buffered 230 MiB of a
  100 MB upload; ``bench/upload_bench.py --s3`` measures it). S3 shows an object only once its
  upload completes, so an interrupted one leaves nothing. Content already stored is not sent
  again.

A backend that fails (a full disk, an unreachable bucket) raises ``StorageUnavailable``, a 503.
An exception raised by the stream itself (the caller's size limit) stops the upload, leaves
nothing stored, and reaches the caller as it was raised.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from flask import current_app

from autocrm.errors import DomainError

CHUNK_BYTES = 64 * 1024
# S3 multipart parts, read from the spooled file a part per thread at a time.
S3_PART_BYTES = 8 * 2**20
S3_THREADS = 2


class StorageUnavailable(DomainError):
    status_code = 503


@dataclass(frozen=True)
class Stored:
    sha256: str
    size: int


class Storage(Protocol):
    def put(self, chunks: Iterable[bytes]) -> Stored: ...

    def open(self, key: str) -> Iterator[bytes]:
        """The stored bytes in chunks; KeyError when there is no such key."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove it (no error when it is already gone)."""
        ...


def _unavailable(exc: Exception) -> StorageUnavailable:
    return StorageUnavailable(
        "File storage is unavailable; please try again in a moment.",
        {"files": [f"Storage failed: {type(exc).__name__}."]},
    )


class LocalStorage:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise KeyError(key)
        return self.root / key[:2] / key[2:4] / key

    def put(self, chunks: Iterable[bytes]) -> Stored:
        digest, size = hashlib.sha256(), 0
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (renamed or removed below)
                dir=self.root, prefix=".incoming-", delete=False
            )
        except OSError as exc:
            raise _unavailable(exc) from exc
        temp = Path(handle.name)
        try:
            with handle:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            key = digest.hexdigest()
            final = self._path(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            temp.replace(final)  # atomic: the key holds the whole file or nothing
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise _unavailable(exc) from exc
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return Stored(key, size)

    def open(self, key: str) -> Iterator[bytes]:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError:
            raise KeyError(key) from None
        except OSError as exc:
            raise _unavailable(exc) from exc
        return _read_chunks(handle)

    def exists(self, key: str) -> bool:
        try:
            return self._path(key).is_file()
        except KeyError:
            return False

    def delete(self, key: str) -> None:
        with contextlib.suppress(KeyError):
            self._path(key).unlink(missing_ok=True)


def _read_chunks(handle: io.BufferedReader) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


class S3Storage:
    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "blobs/",
    ) -> None:
        import boto3  # only installations that use S3 pay for importing it
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30),
        )
        self.transfer = TransferConfig(
            multipart_threshold=S3_PART_BYTES,
            multipart_chunksize=S3_PART_BYTES,
            max_concurrency=S3_THREADS,
        )

    def _key(self, key: str) -> str:
        return self.prefix + key

    def put(self, chunks: Iterable[bytes]) -> Stored:
        from botocore.exceptions import BotoCoreError, ClientError

        digest, size = hashlib.sha256(), 0
        try:
            spool = tempfile.NamedTemporaryFile()  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise _unavailable(exc) from exc
        with spool:
            try:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    spool.write(chunk)
                spool.flush()
            except OSError as exc:
                raise _unavailable(exc) from exc
            key = digest.hexdigest()
            try:
                if not self.exists(key):
                    # By name: boto3 then reads each part from the file as it sends it (given
                    # a file object, it holds up to ten parts in memory).
                    self.client.upload_file(
                        spool.name, self.bucket, self._key(key), Config=self.transfer
                    )
            except (BotoCoreError, ClientError) as exc:
                raise _unavailable(exc) from exc
        return Stored(key, size)

    def open(self, key: str) -> Iterator[bytes]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as exc:
            if _missing(exc):
                raise KeyError(key) from None
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return _stream_body(body)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _missing(exc):
                return False
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return True

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(exc) from exc


def _missing(exc: Any) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}


def _stream_body(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_BYTES)
    finally:
        body.close()


def storage_from_config(config: Mapping[str, Any]) -> Storage:
    """The backend ``AUTOCRM_STORAGE`` names (built here, connected at first use)."""
    kind = config["AUTOCRM_STORAGE"]
    if kind == "local":
        return LocalStorage(config["AUTOCRM_STORAGE_PATH"])
    if kind == "s3":
        if not config["AUTOCRM_S3_BUCKET"]:
            raise ValueError("AUTOCRM_STORAGE=s3 needs AUTOCRM_S3_BUCKET.")
        return S3Storage(
            config["AUTOCRM_S3_BUCKET"],
            endpoint_url=config["AUTOCRM_S3_ENDPOINT_URL"],
            region=config["AUTOCRM_S3_REGION"],
            access_key_id=config["AUTOCRM_S3_ACCESS_KEY_ID"],
            secret_access_key=config["AUTOCRM_S3_SECRET_ACCESS_KEY"],
        )
    raise ValueError(f"AUTOCRM_STORAGE must be local or s3, not {kind!r}.")


def current() -> Storage:
    """The app's storage (``create_app`` builds it from the settings)."""
    storage: Storage = current_app.extensions["autocrm.storage"]
    return storage
