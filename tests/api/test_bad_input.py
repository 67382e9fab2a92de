"""Issue 8, abuse and bad input: body limit, out-of-range values, lone surrogates, security headers.

Against the whole service (``create_app``), on SQLite and PostgreSQL. A 500 is never an answer.
"""

# ruff: noqa: F811  (fixtures imported below are used as parameters)
from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator

import pytest

from .whole_service import Shared, shared_service  # noqa: F401  (fixture)

LIMIT = 65_536  # the default HOTLINE_MAX_BODY_BYTES

LISTS = (
    "/api/v1/tickets",
    "/api/v1/calls",
    "/api/v1/compliance/incidents",
    "/api/v1/compliance/agents/1001/history",
)
RANGED = (*LISTS, "/api/v1/reports/kpi")


def _is_validation_error(response: object, *words: str) -> None:
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    detail = response.json()["detail"]  # type: ignore[attr-defined]
    assert isinstance(detail, list) and all({"loc", "msg", "type"} <= set(e) for e in detail), detail
    text = " ".join(e["msg"] for e in detail)
    for word in words:
        assert word in text, (word, text)


# -- 10. body limit -----------------------------------------------------------------------------------


def test_bodies_over_the_limit_are_refused_before_parsing(shared_service: Shared) -> None:
    big_json = b'{"agent_id": "1001", "reason": "' + b"x" * (LIMIT + 1) + b'"}'
    big_form = b"username=alice&password=" + b"p" * (LIMIT + 1)
    for path, body, kind in (
        ("/api/v1/busy-requests", big_json, "application/json"),  # unauthenticated, too
        ("/api/v1/token", big_form, "application/x-www-form-urlencoded"),
        ("/healthz", big_json, "application/json"),
    ):
        refused = shared_service.client.post(path, content=body, headers={"content-type": kind})
        assert refused.status_code == 413, (path, refused.text)
        assert refused.json() == {"detail": f"Request body larger than {LIMIT} bytes"}

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"comment": "'
        for _ in range(100):
            yield b"y" * 4096
        yield b'"}'

    streamed = shared_service.client.post(
        "/api/v1/busy-requests/1/deny", content=chunked(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413, streamed.text

    def chunked_form() -> Iterator[bytes]:  # read by the form parser, not by the JSON check
        yield b"username=alice&password="
        for _ in range(100):
            yield b"p" * 4096

    form = shared_service.client.post(
        "/api/v1/token", content=chunked_form(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert form.status_code == 413, form.text
    lying = shared_service.client.post(
        "/api/v1/token", content=b"a=b", headers={"content-length": "not-a-number"}
    )
    assert lying.status_code in (400, 413)


def test_a_422_does_not_echo_a_large_input(shared_service: Shared) -> None:
    sam = shared_service.bearer("sam")
    comment = "长" * 20_000  # 60 kB in UTF-8: under the body limit, over the field's 2,000 characters
    response = shared_service.client.post(
        "/api/v1/busy-requests/1/deny", json={"comment": comment}, headers=sam
    )
    _is_validation_error(response)
    assert len(response.content) < 1_000, len(response.content)


# -- 12. out-of-range input gets a 4xx with a message -------------------------------------------------


@pytest.mark.parametrize("path", LISTS)
def test_a_huge_offset_is_a_422(shared_service: Shared, path: str) -> None:
    response = shared_service.client.get(
        path, params={"offset": "9223372036854775808"}, headers=shared_service.bearer("sam")
    )
    _is_validation_error(response, "less than or equal to")


@pytest.mark.parametrize("path", ["/api/v1/tickets/9223372036854775808", "/api/v1/tickets/2147483648"])
def test_a_huge_ticket_id_is_a_422(shared_service: Shared, path: str) -> None:
    _is_validation_error(shared_service.client.get(path, headers=shared_service.bearer("sam")))


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_a_huge_busy_request_id_is_a_422(shared_service: Shared, decision: str) -> None:
    for rid in ("9223372036854775808", "2147483648"):
        response = shared_service.client.post(
            f"/api/v1/busy-requests/{rid}/{decision}", json={}, headers=shared_service.bearer("sam")
        )
        _is_validation_error(response)


@pytest.mark.parametrize("path", RANGED)
@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("from", "0001-01-01T00:00:00+14:00"),
        ("to", "9999-12-31T23:59:59-14:00"),
        ("from", "9999-12-31T00:00:00+00:00"),
        ("to", "0.5"),  # not a Unix time
        ("from", "1700000000"),
    ],
)
def test_extreme_or_numeric_instants_are_a_422(
    shared_service: Shared, path: str, param: str, value: str
) -> None:
    response = shared_service.client.get(path, params={param: value}, headers=shared_service.bearer("sam"))
    _is_validation_error(response)


def test_kpi_report_at_the_end_of_year_9999_is_a_422(shared_service: Shared) -> None:
    sam = shared_service.bearer("sam")
    for params in (
        {"from": "9999-12-31T00:00:00+00:00"},
        {"from": "9999-12-31T00:00:00+00:00", "to": "9999-12-31T23:59:59+00:00", "interval": "hour"},
    ):
        _is_validation_error(shared_service.client.get("/api/v1/reports/kpi", params=params, headers=sam))


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_daily_report_on_the_ends_of_the_calendar_is_a_422(shared_service: Shared, day: str) -> None:
    response = shared_service.client.get(
        "/api/v1/compliance/daily", params={"date": day}, headers=shared_service.bearer("sam")
    )
    _is_validation_error(response, "must lie in")


@pytest.mark.parametrize("tz", ["a/" * 3000 + "b", "/".join(["Asia"] * 3000), "Asia", "../../etc/passwd"])
def test_a_bad_time_zone_is_a_422(shared_service: Shared, tz: str) -> None:
    response = shared_service.client.get(
        "/api/v1/compliance/daily",
        params={"date": "2026-03-02", "tz": tz},
        headers=shared_service.bearer("sam"),
    )
    _is_validation_error(response)
    assert len(response.content) < 1_000


def test_hand_raised_422s_have_the_validation_error_shape(shared_service: Shared) -> None:
    sam = shared_service.bearer("sam")
    backwards = {"from": "2026-03-02T00:00:00+00:00", "to": "2026-03-01T00:00:00+00:00"}
    _is_validation_error(
        shared_service.client.get("/api/v1/tickets", params=backwards, headers=sam), "before"
    )
    _is_validation_error(
        shared_service.client.get("/api/v1/reports/kpi", params=backwards, headers=sam), "before"
    )
    daily = shared_service.client.get(
        "/api/v1/compliance/daily", params={"date": "2026-03-02", "tz": "Mars/Olympus"}, headers=sam
    )
    _is_validation_error(daily, "Unknown time zone")
    unknown = shared_service.client.post(
        "/api/v1/busy-requests", json={"agent_id": "1001", "reason": "nap"}, headers=sam
    )
    _is_validation_error(unknown)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/agents/1001/busy", '{"reason": "\\ud800"}'),
        ("/api/v1/busy-requests", '{"agent_id": "1001", "reason": "meal\\udfff"}'),
        ("/api/v1/busy-requests/1/deny", '{"comment": "ok \\ud800 then"}'),
        ("/api/v1/compliance/incidents/x1/acknowledgements", '{"comment": "\\udc00"}'),
    ],
)
def test_a_lone_surrogate_in_a_json_string_is_a_422(shared_service: Shared, path: str, body: str) -> None:
    response = shared_service.client.post(
        path, content=body, headers={"content-type": "application/json", **shared_service.bearer("sam")}
    )
    _is_validation_error(response, "surrogate")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/busy-requests?agent=a%00b", None),  # PostgreSQL takes no NUL in a string
        ("GET", "/api/v1/tickets?caller=%00", None),
        ("GET", "/api/v1/agents/1001%00", None),
        ("POST", "/api/v1/busy-requests/1/deny", '{"comment": "a\\u0000b"}'),
    ],
)
def test_a_nul_character_is_a_422(shared_service: Shared, method: str, path: str, body: str | None) -> None:
    headers = {"content-type": "application/json", **shared_service.bearer("sam")}
    response = shared_service.client.request(method, path, content=body, headers=headers)
    _is_validation_error(response, "NUL")


def test_a_nul_character_in_a_login_form_is_a_422(shared_service: Shared) -> None:
    response = shared_service.client.post("/api/v1/token", data={"username": "sam\x00", "password": "x" * 10})
    _is_validation_error(response, "NUL")


def test_a_lone_surrogate_without_a_content_type_is_a_422(shared_service: Shared) -> None:
    # refused as such, whether or not the app reads type-less bodies as JSON
    response = shared_service.client.post(
        "/api/v1/busy-requests/1/deny",
        content=b'{"comment": "\\ud800"}',
        headers=shared_service.bearer("sam"),
    )
    _is_validation_error(response, "surrogate")


def test_a_surrogate_pair_is_fine(shared_service: Shared) -> None:
    # "😀" escaped as a pair: valid Unicode, so the route answers on the merits (no such request: 404)
    response = shared_service.client.post(
        "/api/v1/busy-requests/7/deny",
        content='{"comment": "\\ud83d\\ude00"}',
        headers={"content-type": "application/json", **shared_service.bearer("sam")},
    )
    assert response.status_code == 404, response.text


# -- 13. security headers -----------------------------------------------------------------------------


def _script_src(csp: str) -> str:
    return next(d for d in csp.split(";") if d.strip().startswith("script-src"))


def test_pages_and_data_carry_security_headers(shared_service: Shared) -> None:
    for path in (
        "/wallboard/",
        "/wallboard/wallboard.js",
        "/api/v1/agents",
        "/healthz",
        "/openapi.json",
        "/docs",
    ):
        response = shared_service.client.get(path)
        assert response.status_code in (200, 401), (path, response.status_code)
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY", path
        assert headers["referrer-policy"] == "no-referrer", path
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in _script_src(csp) if "script-src" in csp else "default-src 'none'" in csp
    page = shared_service.client.get("/wallboard/").headers["content-security-policy"]
    assert _script_src(page).split() == ["script-src", "'self'"]


def test_the_docs_page_allows_exactly_its_own_inline_script(shared_service: Shared) -> None:
    response = shared_service.client.get("/docs")
    scripts = re.findall(r"<script>(.*?)</script>", response.text, re.S)
    assert scripts, "Swagger UI starts from an inline script"
    expected = {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'" for s in scripts
    }
    script_src = _script_src(response.headers["content-security-policy"]).split()
    assert expected <= set(script_src) and "'unsafe-inline'" not in script_src
