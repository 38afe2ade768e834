"""The storage behind attachments, run against both backends: a local folder and S3 (moto's
S3 server, a real process on a free port, stands in for AWS S3 or MinIO)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from autocrm.files.storage import LocalStorage, S3Storage, Storage, StorageUnavailable
from tests.processes import free_port


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "files")
    return request.getfixturevalue("s3_storage")


def chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def stored_keys(storage: Storage) -> set[str]:
    """Every object the backend holds, under any key (temporary ones included)."""
    if isinstance(storage, LocalStorage):
        return {p.name for p in storage.root.rglob("*") if p.is_file()}
    listing = storage.client.list_objects_v2(Bucket=storage.bucket)
    return {item["Key"] for item in listing.get("Contents", [])}


def test_put_stores_under_the_sha256_and_reads_back_in_chunks(storage):
    data = bytes(range(256)) * 1000
    stored = storage.put(chunks(data))
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size == len(data)
    assert storage.exists(stored.sha256)
    assert b"".join(storage.open(stored.sha256)) == data


def test_the_same_content_is_stored_once(storage):
    first = storage.put(chunks(b"invoice 42" * 100))
    second = storage.put(chunks(b"invoice 42" * 100))
    assert first == second
    assert len(stored_keys(storage)) == 1


def test_an_empty_file_is_a_file(storage):
    stored = storage.put(iter([]))
    assert stored.size == 0
    assert b"".join(storage.open(stored.sha256)) == b""


def test_an_interrupted_upload_leaves_nothing_stored(storage):
    class ClientWentAway(Exception):
        pass

    def broken() -> Iterator[bytes]:
        yield b"x" * 100_000
        raise ClientWentAway

    with pytest.raises(ClientWentAway):
        storage.put(broken())
    assert stored_keys(storage) == set()


def test_delete_removes_it_and_tolerates_a_missing_key(storage):
    stored = storage.put(chunks(b"to be removed"))
    storage.delete(stored.sha256)
    assert not storage.exists(stored.sha256)
    storage.delete(stored.sha256)
    with pytest.raises(KeyError):
        storage.open(stored.sha256)


def test_an_unknown_key_is_missing(storage):
    assert not storage.exists("0" * 64)
    with pytest.raises(KeyError):
        storage.open("0" * 64)


def test_an_unreachable_s3_server_is_a_clear_503():
    storage = S3Storage(
        "nowhere",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region="us-east-1",
        access_key_id="test",
        secret_access_key="test",
    )
    with pytest.raises(StorageUnavailable) as refused:
        storage.put(chunks(b"hello"))
    assert refused.value.status_code == 503


def test_an_unwritable_folder_is_a_clear_503(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(StorageUnavailable) as refused:
        LocalStorage(blocker / "files").put(chunks(b"hello"))
    assert refused.value.status_code == 503


def test_a_local_key_never_names_a_path_outside_the_folder(tmp_path):
    storage = LocalStorage(tmp_path / "files")
    for key in ("../../etc/passwd", "a" * 63 + "/", "A" * 64):
        assert not storage.exists(key)
        with pytest.raises(KeyError):
            storage.open(key)
