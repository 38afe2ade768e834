"""Schemathesis over every operation of the API's own OpenAPI spec, as an admin, an agent and a
customer: whatever a client sends, valid or not, the answer is never a 5xx (issue 11).

The spec is the one the app serves (``/api/openapi.json``), called in-process through the WSGI
app, so the run needs no server and takes about a minute. Hypothesis is derandomized (the same
cases on every run, so CI is deterministic) and keeps no example database; each case runs in
the test's rolled-back transaction like any other test. Positive cases (valid per the spec)
reach the services; negative ones (wrong types, out of range, missing fields) the parsing.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from autocrm.people.models import Role
from autocrm.security import issue_token

# Per operation, role and generation mode: ~50 operations x 3 roles x 2 modes x 20 > 5,000.
EXAMPLES = 20
ROLES = [Role.ADMIN, Role.AGENT, Role.CUSTOMER]


@pytest.fixture
def seeded(factory) -> dict[Role, Any]:
    """A few rows of each kind, so generated small ids often name something that exists."""
    team = factory.team()
    people = {
        Role.ADMIN: factory.admin(),
        Role.AGENT: factory.agent(team),
        Role.CUSTOMER: factory.customer(),
    }
    for _ in range(2):
        factory.ticket(people[Role.CUSTOMER], team=team)
    return people


def fuzz_operation(operation: Any, token: str, counter: list[int]) -> None:
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    strategies = [operation.as_strategy(generation_mode=mode) for mode in modes]

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=EXAMPLES * len(strategies),
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.generate],  # report the first 5xx, don't shrink for minutes
    )
    def run(case: Any) -> None:
        counter[0] += 1
        case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error]
        )

    run()


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_no_generated_request_gets_a_server_error(app, client, seeded, role, fresh_login_limit):
    user = seeded[role]
    token = issue_token(user.id, user.password_hash)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    counter = [0]
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        fuzz_operation(operation, token, counter)
    print(f"\n{role.value}: {counter[0]} cases over {len(operations)} operations")  # noqa: T201
    assert counter[0] >= 5000 // len(ROLES)
