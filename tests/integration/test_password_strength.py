"""Passwords that are easy to guess are refused wherever one is chosen (issue 13), with advice
at the ``password`` field: a common password, a keyboard walk, the person's own name or email.
"""

from __future__ import annotations

import pytest

from autocrm.errors import InvalidInput
from autocrm.people import users
from tests.factories import ApiClient, assert_error
from tests.integration.test_intake import sign_up


@pytest.mark.parametrize("weak", ["password123", "qwertyuiop", "12345678910", "iloveyou!"])
def test_common_passwords_are_refused_with_advice(weak):
    with pytest.raises(InvalidInput) as refused:
        users.check_password(weak)
    [advice] = refused.value.errors["password"]
    assert advice


def test_a_password_made_of_the_persons_own_name_or_address_is_refused():
    with pytest.raises(InvalidInput):
        users.check_password("dana.fernandez", ["dana.fernandez@example.org", "Dana Fernandez"])
    users.check_password("dana.fernandez")  # the same, for someone else, is hard to guess


def test_a_passphrase_is_accepted():
    users.check_password("tulip orbit canyon 42", ["dana@example.org", "Dana"])


def test_the_api_refuses_a_weak_password_for_a_new_user(client, factory):
    admin_api = ApiClient(client, factory.admin())

    response = admin_api.post(
        "/api/users",
        json={"email": "new@example.org", "password": "password123", "role": "agent"},
    )

    assert "password" in assert_error(response, 422)["errors"]


def test_signing_up_with_a_weak_password_keeps_the_form_and_says_why(client, db_session):
    page = sign_up(client, "Dana", "dana@example.org", password="qwertyuiop")

    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert 'value="dana@example.org"' in html
    assert "guess" in html.lower() or "common" in html.lower()
