"""Issue 8, item 14: the OpenAPI schema tells the truth, checked by schemathesis over the whole API.

The whole service (``create_app``) runs in uvicorn on loopback (SQLite, Redis, its AMI link pointed at
a closed port); schemathesis generates requests from ``/openapi.json`` for every operation and
calls them with an agent's, a supervisor's and an admin's token, running all its checks: no 5xx, only
declared statuses, content types, headers and bodies as declared, invalid data rejected, valid data
accepted. Bounded: ``MAX_EXAMPLES`` per operation and role, no stateful phase, ``deadline`` off.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from app.db.engine import make_engine, session_factory
from app.main import create_app
from app.services.users import create_user
from tests.browser.conftest import LoopThread, Served

from .conftest import PASSWORD
from .whole_service import USERS, service_settings

MAX_EXAMPLES = int(
    os.environ.get("HOTLINE_SCHEMATHESIS_EXAMPLES", "25")
)  # per operation; more for a deeper run
ROLES = {"agent": "alice", "supervisor": "sam", "admin": "root"}


@dataclass
class Running:
    base_url: str
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def running(db_url: str) -> Iterator[Running]:
    """The service on the module's database (SQLite, then PostgreSQL: ``db_url`` in conftest.py)."""
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        for name, (role, agent_id) in USERS.items():
            create_user(session, name, PASSWORD, role, agent_id)
    engine.dispose()
    loop = LoopThread()
    served = Served(create_app(service_settings(db_url)), loop)
    try:
        tokens = {}
        for role, name in ROLES.items():
            response = httpx.post(
                f"{served.base_url}/api/v1/token", data={"username": name, "password": PASSWORD}, timeout=10
            )
            response.raise_for_status()
            tokens[role] = response.json()["access_token"]
        yield Running(served.base_url, tokens)
    finally:
        served.stop()
        loop.close()


CONFIG = SchemathesisConfig.from_dict(
    {
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            # A schema cannot say which busy reasons are configured or that 'from' precedes 'to': such
            # requests are well formed yet refused, with a declared 422 and a message.
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429", "503"]
            },
            # 503 is what /readyz (and the wallboard before its first snapshot) are for, declared.
            "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]},
        },
    }
)
# The schema as the service serves it (the same create_app); requests go to the running one.
schema = schemathesis.openapi.from_dict(create_app(service_settings("sqlite://")).openapi(), config=CONFIG)
# The push streams answer with a stream that lasts minutes (tests/browser covers them); their rules
# are still checked through GET /api/v1/wallboard and GET /api/v1/desk/{agent_id}, which share them.
schema = schema.exclude(path="/api/v1/wallboard/stream").exclude(path="/api/v1/desk/{agent_id}/stream")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_schema(case: schemathesis.Case, running: Running) -> None:
    """Every generated request, as each role (an agent is refused much a supervisor may do: declared)."""
    for role in ROLES:
        headers = {"Authorization": f"Bearer {running.tokens[role]}"}
        case.call_and_validate(base_url=running.base_url, headers=headers, timeout=30)


def test_errors_csv_and_streams_are_declared() -> None:
    """What schemathesis cannot see by chance, read from the schema itself."""
    paths = create_app(service_settings("sqlite://")).openapi()["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if operation.get("security"):
                assert {"401", "403"} <= set(responses), (method, path)
            if "requestBody" in operation:
                assert "413" in responses, (method, path)
            for code, response in responses.items():
                schema_ref = (
                    response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
                )
                if code == "422":
                    assert schema_ref == "#/components/schemas/HTTPValidationError", (method, path)
                elif code >= "400" and path != "/readyz":  # its 503 is the 200's body: why not ready
                    assert schema_ref == "#/components/schemas/ErrorOut", (method, path, code)
    for path in ("/api/v1/compliance/incidents", "/api/v1/reports/kpi"):
        assert "text/csv" in paths[path]["get"]["responses"]["200"]["content"], path
    assert "text/event-stream" in paths["/api/v1/wallboard/stream"]["get"]["responses"]["200"]["content"]
    assert "text/plain" in next(iter(paths["/metrics"]["get"]["responses"]["200"]["content"]))
    assert {"401", "429", "503"} <= set(paths["/api/v1/token"]["post"]["responses"])


def test_get_queues_reload_is_not_a_queue(running: Running) -> None:
    headers = {"Authorization": f"Bearer {running.tokens['admin']}"}
    response = httpx.get(f"{running.base_url}/api/v1/queues/reload", headers=headers)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    queue = httpx.get(f"{running.base_url}/api/v1/queues/general", headers=headers)
    assert queue.status_code == 200 and queue.json()["name"] == "general"
