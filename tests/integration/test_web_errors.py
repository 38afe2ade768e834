"""What a person sees when a page fails: the site's own page with its navigation, never the
API's JSON or a bare server page; the API keeps its JSON error shape."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from autocrm.app import create_app
from autocrm.extensions import db
from tests.conftest import app_config
from tests.factories import Factory, assert_error, web_login


def test_an_unknown_address_is_a_page_in_the_sites_shell(
    client: FlaskClient, factory: Factory
) -> None:
    web_login(client, factory.agent(name="Ann Agent"))

    response = client.get("/agent/no-such-page")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "Page not found" in page and "Log out Ann Agent" in page

    anonymous = client.application.test_client().get("/nowhere")
    assert anonymous.status_code == 404 and "Page not found" in anonymous.get_data(as_text=True)


def test_the_api_keeps_json_errors_for_unknown_addresses_and_methods(client: FlaskClient) -> None:
    assert "message" in assert_error(client.get("/api/no-such-endpoint"), 404)
    assert_error(client.put("/api/auth/token"), 405)


def test_a_wrong_method_on_a_page_is_a_page(client: FlaskClient) -> None:
    response = client.delete("/login")
    assert response.status_code == 405
    assert "That does not work here" in response.get_data(as_text=True)


def test_a_server_error_is_a_page_for_people_and_json_for_the_api(
    tmp_path: Path, redis_url: str
) -> None:
    app = create_app(app_config(f"sqlite:///{tmp_path / 'errors.db'}", redis_url))
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the error handler answers

    def broken() -> str:
        raise RuntimeError("a bug")

    app.add_url_rule("/portal/broken", view_func=broken)
    app.add_url_rule("/api/broken", view_func=broken, endpoint="api_broken")
    with app.app_context():
        db.create_all()
        try:
            page = app.test_client().get("/portal/broken")
            assert page.status_code == 500
            text = page.get_data(as_text=True)
            assert "Something went wrong on our side" in text and "a bug" not in text
            body = assert_error(app.test_client().get("/api/broken"), 500)
            assert "a bug" not in body["message"]
        finally:
            db.drop_all()


def test_the_favicon_is_served(client: FlaskClient) -> None:
    response = client.get("/favicon.ico", follow_redirects=True)
    try:
        assert response.status_code == 200
        assert response.mimetype == "image/svg+xml"
    finally:
        response.close()
