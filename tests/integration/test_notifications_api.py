"""The notifications API: your own notifications only, read state, unread count, and email
preferences per kind."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from autocrm.notifications import services as notifications
from autocrm.notifications.models import NOTIFICATION_KINDS, NotificationPreference
from tests.factories import ApiClient, assert_error


@pytest.fixture
def alice(factory):
    return factory.customer()


@pytest.fixture
def bob(factory):
    return factory.customer()


@pytest.fixture
def api(client, alice) -> ApiClient:
    return ApiClient(client, alice)


def put(api: ApiClient, url: str, **kw):
    """ApiClient has no put (tests/factories.py is shared): the same call, spelled out."""
    return api.client.put(url, headers=api.headers, **kw)


def notify(db_session, user, n: int, kind: str = "status_changed") -> list[int]:
    ids = []
    for i in range(n):
        note = notifications.notify(
            user, kind, title=f"Note {i}", body="b", dedupe_key=f"evt-{user.id}-{kind}-{i}"
        )
        ids.append(note.id)
    db_session.commit()
    return ids


def test_the_list_is_your_own_newest_first_with_the_unread_count(api, db_session, alice, bob):
    mine = notify(db_session, alice, 3)
    notify(db_session, bob, 2)

    body = api.get("/api/notifications").json

    assert [n["id"] for n in body["items"]] == mine[::-1]
    assert body["unread_count"] == 3
    assert body["has_more"] is False
    first = body["items"][0]
    assert first["title"] == "Note 2"
    assert first["kind"] == "status_changed"
    assert first["read_at"] is None


def test_keyset_pages_and_what_arrived_since(api, db_session, alice):
    ids = notify(db_session, alice, 5)

    page = api.get("/api/notifications?limit=2").json
    assert [n["id"] for n in page["items"]] == [ids[4], ids[3]]
    assert page["has_more"] is True
    page = api.get(f"/api/notifications?limit=2&before={ids[3]}").json
    assert [n["id"] for n in page["items"]] == [ids[2], ids[1]]
    page = api.get(f"/api/notifications?limit=2&before={ids[1]}").json
    assert [n["id"] for n in page["items"]] == [ids[0]]
    assert page["has_more"] is False

    since = api.get(f"/api/notifications?after={ids[2]}").json
    assert [n["id"] for n in since["items"]] == [ids[4], ids[3]]


def test_marking_read_and_the_unread_filter(api, db_session, alice):
    ids = notify(db_session, alice, 3)

    read = api.post(f"/api/notifications/{ids[0]}/read")
    assert read.status_code == 200
    assert read.json["read_at"] is not None
    again = api.post(f"/api/notifications/{ids[0]}/read")
    assert again.json["read_at"] == read.json["read_at"], "the first read time stays"

    unread = api.get("/api/notifications?unread=true").json
    assert [n["id"] for n in unread["items"]] == [ids[2], ids[1]]
    assert unread["unread_count"] == 2
    assert len(api.get("/api/notifications").json["items"]) == 3


def test_read_all_and_read_up_to(api, db_session, alice, bob):
    ids = notify(db_session, alice, 3)
    notify(db_session, bob, 1)

    partial = api.post("/api/notifications/read-all", json={"up_to": ids[1]})
    assert partial.status_code == 200
    assert partial.json == {"marked": 2, "unread_count": 1}

    rest = api.post("/api/notifications/read-all")
    assert rest.json == {"marked": 1, "unread_count": 0}
    assert api.post("/api/notifications/read-all", json={}).json["marked"] == 0

    bobs = ApiClient(api.client, bob).get("/api/notifications").json
    assert bobs["unread_count"] == 1, "read-all touches only your own"


def test_someone_elses_notification_is_not_found(api, db_session, bob):
    [theirs] = notify(db_session, bob, 1)

    assert_error(api.post(f"/api/notifications/{theirs}/read"), 404)
    assert_error(api.post("/api/notifications/999999/read"), 404)
    bobs = ApiClient(api.client, bob).get("/api/notifications").json
    assert bobs["items"][0]["read_at"] is None


def test_bad_list_arguments_are_422(api):
    assert_error(api.get("/api/notifications?limit=0"), 422)
    assert_error(api.get("/api/notifications?before=abc"), 422)
    assert_error(api.get("/api/notifications?colour=red"), 422)
    assert_error(api.post("/api/notifications/read-all", json={"up_to": "all"}), 422)


def test_anonymous_calls_are_401(client):
    assert_error(client.get("/api/notifications"), 401)
    assert_error(client.post("/api/notifications/read-all"), 401)
    assert_error(client.get("/api/users/me/notification-preferences"), 401)


def test_preferences_list_every_kind_on_by_default(api):
    response = api.get("/api/users/me/notification-preferences")
    assert response.status_code == 200
    assert response.json == dict.fromkeys(NOTIFICATION_KINDS, True)


def test_preferences_switch_email_per_kind(api, db_session, alice, bob):
    url = "/api/users/me/notification-preferences"

    off = put(api, url, json={"assigned": False, "sla_warning": False})
    assert off.status_code == 200
    expected = {**dict.fromkeys(NOTIFICATION_KINDS, True), "assigned": False, "sla_warning": False}
    assert off.json == expected
    assert api.get(url).json == expected
    assert ApiClient(api.client, bob).get(url).json == dict.fromkeys(NOTIFICATION_KINDS, True)

    back = put(api, url, json={"assigned": True, "sla_warning": False})
    assert back.json == {**dict.fromkeys(NOTIFICATION_KINDS, True), "sla_warning": False}
    stored = db_session.scalars(
        select(NotificationPreference.kind).where(NotificationPreference.user_id == alice.id)
    ).all()
    assert stored == ["sla_warning"], "only switched-off kinds are stored"


def test_an_unknown_kind_is_422_naming_it(api):
    url = "/api/users/me/notification-preferences"
    body = assert_error(put(api, url, json={"assigned": False, "carrier_pigeon": False}), 422)
    assert "carrier_pigeon" in body["message"]
    assert "carrier_pigeon" in body["errors"]
    assert api.get(url).json["assigned"] is True, "nothing changed"


@pytest.mark.parametrize("value", ["no", 0, None, []])
def test_a_preference_must_be_a_boolean(api, value):
    response = put(api, "/api/users/me/notification-preferences", json={"assigned": value})
    assert "assigned" in assert_error(response, 422)["errors"]["json"]
