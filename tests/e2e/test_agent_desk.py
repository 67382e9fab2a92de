"""The agent's desk end to end: real Asterisk, the service as a process, sipp phones and a citizen,
the page in real headless Chromium.

Agent 1001 signs in on /agent/, logs in at its phone and clicks ready; a citizen calls 12345; the page
shows the screen pop, with the caller's number and an earlier work order of that number, while the
phone is still ringing; the phone answers, the agent fills in the intake form (Chinese) and submits;
the work order read back over the API holds what was typed. Agent 1002's page, open all along, never
sees the pop. The time from the pop to the phone's INVITE is printed (measured, not asserted).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from app.db.engine import make_engine, session_factory
from app.services.calls import CallRecorder
from devtools.local_asterisk import LocalAsterisk, cli
from tests.browser.test_agent_page import POP_SEEN, WATCH_POP, chromium, state_is
from tests.e2e.service import PASSWORD, HotlineService, database
from tests.e2e.sipp import AgentPhone, place_call

pytestmark = pytest.mark.e2e

CALLER = "13955501234"
DESCRIPTION = "我家楼下的路灯坏了三天，晚上很黑，请派人修理。"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest, local_asterisk: LocalAsterisk, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HotlineService]:
    workdir = tmp_path_factory.mktemp(f"desk-service-{request.param}")
    cli("channel request hangup all")
    with database(request.param, workdir) as url:
        svc = HotlineService(local_asterisk, url, workdir, ring_timeout="15")
        svc.create_users(["1001", "1002", "1003"])
        svc.url = url  # type: ignore[attr-defined]
        svc.start()
        try:
            yield svc
        finally:
            svc.stop()


def sign_in(browser: WebDriver, base_url: str, username: str) -> WebDriverWait[WebDriver]:
    wait = WebDriverWait(browser, 15)
    browser.get(f"{base_url}/agent/")
    form = wait.until(ec.visibility_of_element_located((By.ID, "login")))
    form.find_element(By.NAME, "username").send_keys(username)
    form.find_element(By.NAME, "password").send_keys(PASSWORD)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(ec.visibility_of_element_located((By.ID, "desk")))
    wait.until(lambda b: b.find_element(By.ID, "link").get_attribute("class") == "status live")
    return wait


def seed_earlier_order(service: HotlineService) -> int:
    """A call of the same number this morning, its work order accepted by the center."""
    engine = make_engine(service.url)  # type: ignore[attr-defined]
    try:
        recorder = CallRecorder(session_factory(engine))
        earlier = datetime.now(UTC) - timedelta(hours=3)
        recorder.call_waiting("desk-earlier-1", "general", CALLER, 0, earlier)
        order_id = recorder.call_answered("desk-earlier-1", "1003", earlier + timedelta(seconds=7))
        recorder.call_ended("desk-earlier-1", earlier + timedelta(minutes=2), "16")
    finally:
        engine.dispose()
    with service.client("sup") as sup:
        body = {
            "version": 1,
            "category": "CITY-ROAD",
            "description": "路灯不亮，已派单。",
            "disposition": "accepted",
        }
        response = sup.post(f"/api/v1/work-orders/{order_id}/submit", json=body)
        assert response.status_code == 200, response.text
    return order_id


def test_screen_pop_before_answer_then_intake_on_the_real_call(
    local_asterisk: LocalAsterisk, service: HotlineService, tmp_path: Path
) -> None:
    earlier = seed_earlier_order(service)
    page = chromium(tmp_path / "chromium-1001")
    other = chromium(tmp_path / "chromium-1002")
    try:
        with (
            AgentPhone("agent1", local_asterisk.agents["agent1"], "127.0.0.3", ring_seconds=4) as phone,
            AgentPhone("agent2", local_asterisk.agents["agent2"], "127.0.0.4", ring_seconds=1) as phone2,
            service.client("agent1002") as agent2,
            service.client("sup") as sup,
        ):
            # Agent 1002 sits at its phone, busy; its page is open and live all the time.
            sign_in(other, service.base_url, "agent1002")
            assert agent2.post("/api/v1/agents/1002/login", json={"endpoint": "agent2"}).status_code == 200
            assert agent2.post("/api/v1/agents/1002/busy", json={"reason": "training"}).status_code == 200
            other.execute_script(WATCH_POP)

            wait = sign_in(page, service.base_url, "agent1001")
            page.find_element(By.ID, "endpoint").send_keys("agent1")
            page.find_element(By.ID, "btn-login").click()
            wait.until(state_is("logged_in"))
            page.find_element(By.ID, "btn-ready").click()
            wait.until(state_is("ready"))

            call = place_call(CALLER, hangup_after=20, max_seconds=60)
            pop_at = invite_at = None
            deadline = time.monotonic() + 15
            while (pop_at is None or invite_at is None) and time.monotonic() < deadline:
                if pop_at is None and page.find_element(By.ID, "pop").is_displayed():
                    pop_at = time.monotonic()
                    pop_state = page.find_element(By.ID, "state").get_attribute("data-state")
                if invite_at is None and phone.invites_seen():
                    invite_at = time.monotonic()
                time.sleep(0.02)
            assert pop_at is not None, "no screen pop"
            assert invite_at is not None, "the phone never rang"
            assert pop_state == "ringing"
            print(f"screen pop {1000 * (pop_at - invite_at):+.0f} ms relative to the phone's INVITE")
            # Still ringing (the phone answers after 4 s): the pop shows the caller and its history.
            assert page.find_element(By.ID, "pop-number").text == CALLER
            assert page.find_element(By.ID, "pop-queue").text == "general"
            row = wait.until(
                lambda b: b.find_element(By.CSS_SELECTOR, f'#pop-history tr[data-order="{earlier}"]')
            )
            assert "路灯不亮" in row.text and "道路设施" in row.text
            assert page.find_element(By.ID, "pop-repeat").text == "是"
            assert not any(line.startswith("ANSWERED") for line in phone.log_lines()), "answered too soon"

            form = WebDriverWait(page, 15).until(ec.visibility_of_element_located((By.ID, "order")))
            wait.until(state_is("on_call"))
            order_id = int(form.get_attribute("data-order-id"))
            Select(form.find_element(By.NAME, "category")).select_by_value("CITY-ROAD")
            Select(form.find_element(By.NAME, "district")).select_by_value("pudong")
            form.find_element(By.NAME, "description").send_keys(DESCRIPTION)
            form.find_element(By.NAME, "address").send_keys("浦东新区张杨路 500 弄 3 号")
            form.find_element(By.NAME, "citizen_name").send_keys("李四")
            form.find_element(By.NAME, "urgent").click()
            form.find_element(By.CSS_SELECTOR, "input[name=disposition][value=accepted]").click()
            form.find_element(By.ID, "btn-submit").click()
            wait.until(
                lambda b: (
                    b.find_element(By.ID, "order-message").get_attribute("data-submitted") == str(order_id)
                )
            )

            stored = sup.get(f"/api/v1/work-orders/{order_id}").json()
            assert (stored["call_id"], stored["caller_number"], stored["agent_id"]) == (
                stored["call_ids"][0],
                CALLER,
                "1001",
            )
            assert (stored["category"], stored["district"], stored["description"]) == (
                "CITY-ROAD",
                "pudong",
                DESCRIPTION,
            )
            assert (stored["address"], stored["citizen_name"], stored["urgent"]) == (
                "浦东新区张杨路 500 弄 3 号",
                "李四",
                True,
            )
            assert (stored["disposition"], stored["status"], stored["submitted_by"]) == (
                "accepted",
                "accepted",
                "agent1001",
            )
            assert stored["department"] == "区建设和管理委员会" and stored["deadline_at"]
            calls = {
                c["id"]: c for c in sup.get("/api/v1/calls").json()["items"] if c["caller_number"] == CALLER
            }
            assert set(calls) == {"desk-earlier-1", stored["call_id"]}
            assert calls[stored["call_id"]]["outcome"] == "answered"

            result = call.wait(40)
            assert result.answered, result.log + result.errors
            assert other.execute_script(POP_SEEN) is False
            assert CALLER not in other.page_source
            assert phone2.invites_seen() == []
            for agent_id in ("1001", "1002"):
                sup.post(f"/api/v1/agents/{agent_id}/logout")
    finally:
        page.quit()
        other.quit()
