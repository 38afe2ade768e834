"""Two web processes share attachments through S3 (moto's server standing in for AWS S3 or
MinIO): a file uploaded to one is attached and downloaded through the other, and its bytes
are in the bucket under their SHA-256, not on either process's disk."""

from __future__ import annotations

import hashlib

import requests
from flask import Flask

from autocrm.extensions import db
from tests import files_data, processes
from tests.e2e import servers
from tests.factories import PASSWORD, Factory


def test_two_web_processes_share_the_s3_bucket(
    app: Flask, database_url: str, redis_url: str, s3_storage, s3_endpoint: str, tmp_path
) -> None:
    env = processes.test_env(
        database_url,
        redis_url,
        AUTOCRM_STORAGE="s3",
        AUTOCRM_S3_BUCKET=s3_storage.bucket,
        AUTOCRM_S3_ENDPOINT_URL=s3_endpoint,
        AUTOCRM_S3_REGION="us-east-1",
        AUTOCRM_S3_ACCESS_KEY_ID="test",
        AUTOCRM_S3_SECRET_ACCESS_KEY="test",
        # Were the files on a disk, each process would have its own.
        AUTOCRM_STORAGE_PATH=str(tmp_path / "not-shared"),
    )
    image = files_data.png(64, 48)
    with app.app_context(), processes.committed_data():
        email = Factory(db.session).customer().email
        db.session.rollback()
        with servers.running("eventlet", env, tmp_path, count=2) as (one, two):
            token = requests.post(
                f"{one.url}/api/auth/token",
                json={"email": email, "password": PASSWORD},
                timeout=10,
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            uploaded = requests.post(
                f"{one.url}/api/uploads",
                headers=auth,
                files={"files": ("screen.png", image, "application/octet-stream")},
                timeout=30,
            )
            assert uploaded.status_code == 201, uploaded.text
            [item] = uploaded.json()["items"]
            ticket = requests.post(
                f"{two.url}/api/tickets",
                headers=auth,
                json={"subject": "Shared", "description": "See", "attachment_ids": [item["id"]]},
                timeout=30,
            )
            assert ticket.status_code == 201, ticket.text
            downloaded = requests.get(f"{two.url}{item['url']}", headers=auth, timeout=30)
            assert downloaded.status_code == 200
            assert downloaded.content == image
    assert s3_storage.exists(hashlib.sha256(image).hexdigest())
    assert not (tmp_path / "not-shared").exists()
