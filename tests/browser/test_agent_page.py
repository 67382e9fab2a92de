"""The agent's desk page in real headless Chromium, against the service with its AMI link logged in to
the fake AMI server (the real-Asterisk version is tests/e2e/test_agent_desk.py).

Agent 1001 signs in, logs in at a phone and clicks ready; a call arrives and the screen pop shows
the caller and an earlier work order of that number while the phone rings; on answer the intake form
opens on the call's work order; what is typed (Chinese) is what the API reads back. Agent 1002's
page, open all along, never sees the pop. ``HOTLINE_AGENT_SCREENSHOT=docs/agent.png`` refreshes the
README's screenshots (and ``…-en.png`` beside it, in English).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from app.db.engine import session_factory
from app.services.calls import CallRecorder
from tests.browser.conftest import PASSWORD, Center
from tests.browser.test_wallboard_page import CHROMEDRIVER, CHROMIUM

CALLER = "13912345678"
POP_SEEN = "return window.__popSeen === true;"
WATCH_POP = (
    "window.__popSeen = false; setInterval(() => {"
    " const pop = document.querySelector('#pop'); if (pop && !pop.hidden) window.__popSeen = true; }, 20);"
)


def chromium(tmp: Path) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--window-size=1100,1250", "--lang=zh-CN", f"--user-data-dir={tmp}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(20)
    return driver


@pytest.fixture(scope="module")
def browsers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebDriver, WebDriver]]:
    first = chromium(tmp_path_factory.mktemp("chromium-1001"))
    try:
        second = chromium(tmp_path_factory.mktemp("chromium-1002"))
        try:
            yield first, second
        finally:
            second.quit()
    finally:
        first.quit()


def sign_in(browser: WebDriver, base_url: str, username: str) -> WebDriverWait[WebDriver]:
    wait = WebDriverWait(browser, 10)
    browser.get(f"{base_url}/agent/")
    browser.execute_script("sessionStorage.clear(); localStorage.clear();")
    browser.refresh()
    form = wait.until(ec.visibility_of_element_located((By.ID, "login")))
    form.find_element(By.NAME, "username").send_keys(username)
    form.find_element(By.NAME, "password").send_keys(PASSWORD)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(ec.visibility_of_element_located((By.ID, "desk")))
    wait.until(lambda b: b.find_element(By.ID, "state").get_attribute("data-state") == "logged_out")
    return wait


def state_is(state: str) -> object:
    return lambda b: b.find_element(By.ID, "state").get_attribute("data-state") == state


def seed_earlier_order(center: Center, base_url: str) -> int:
    """An earlier call of the same number, its work order accepted (through the API, as the center)."""
    recorder = CallRecorder(session_factory(center.db))
    yesterday = datetime.now(UTC) - timedelta(hours=20)  # within the 24 h repeat-caller window
    recorder.call_waiting("earlier-1", "general", CALLER, 0, yesterday)
    order_id = recorder.call_answered("earlier-1", "1003", yesterday + timedelta(seconds=9))
    recorder.call_ended("earlier-1", yesterday + timedelta(minutes=3), "16")
    headers = {"Authorization": f"Bearer {center.token('sup')}"}
    body = {
        "version": 1,
        "category": "CITY-ROAD",
        "description": "路灯不亮已一周，请尽快维修。",
        "district": "huangpu",
        "disposition": "accepted",
    }
    response = httpx.post(f"{base_url}/api/v1/work-orders/{order_id}/submit", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return order_id


def test_pop_then_intake_on_the_answered_calls_order(
    browsers: tuple[WebDriver, WebDriver], center: Center
) -> None:
    page, other = browsers
    base = center.owner.base_url
    earlier = seed_earlier_order(center, base)

    # Agent 1002 watches its own desk all along: busy at its phone, never offered the call.
    sign_in(other, base, "agent1002")
    center.agent("1002", "login", endpoint="agent2")
    center.agent("1002", "busy", reason="training")
    WebDriverWait(other, 10).until(state_is("busy"))
    other.execute_script(WATCH_POP)

    wait = sign_in(page, base, "agent1001")
    page.find_element(By.ID, "endpoint").send_keys("agent1")
    page.find_element(By.ID, "btn-login").click()
    wait.until(state_is("logged_in"))
    page.find_element(By.ID, "btn-ready").click()
    wait.until(state_is("ready"))

    center.ami.originate_reason = 4  # the phone answers...
    center.ami.originate_delay = 3.0  # ...after ringing 3 s
    placed = time.monotonic()
    center.place_call("1700000900.1", number=CALLER)
    wait.until(ec.visibility_of_element_located((By.ID, "pop")))
    seen_after = time.monotonic() - placed
    assert page.find_element(By.ID, "state").get_attribute("data-state") == "ringing"  # not answered yet
    assert page.find_element(By.ID, "pop-number").text == CALLER
    assert page.find_element(By.ID, "pop-queue").text == "general"
    row = wait.until(lambda b: b.find_element(By.CSS_SELECTOR, f'#pop-history tr[data-order="{earlier}"]'))
    assert "路灯不亮" in row.text and "道路设施" in row.text and "已受理" in row.text
    assert page.find_element(By.ID, "pop-repeat").text == "是"
    print(f"screen pop visible {seen_after * 1000:.0f} ms after the call was placed (fake AMI)")
    screenshot = os.environ.get("HOTLINE_AGENT_SCREENSHOT")
    if screenshot:  # the pop, in Chinese
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        assert page.save_screenshot(screenshot)

    # Answered: the intake form opens on the call's work order, the pop gives way to the call.
    form = WebDriverWait(page, 10).until(ec.visibility_of_element_located((By.ID, "order")))
    wait.until(state_is("on_call"))
    order_id = int(form.get_attribute("data-order-id"))
    assert page.find_element(By.ID, "pop").is_displayed() is False
    assert page.find_element(By.ID, "call-number").text == CALLER
    assert form.find_element(By.NAME, "contact_number").get_attribute("value") == CALLER

    Select(form.find_element(By.NAME, "category")).select_by_value("ENV-NOISE")
    Select(form.find_element(By.NAME, "district")).select_by_value("xuhui")
    form.find_element(By.NAME, "description").send_keys("小区旁工地夜间施工，噪音很大。")
    form.find_element(By.NAME, "address").send_keys("漕溪北路 100 号")
    form.find_element(By.NAME, "citizen_name").send_keys("张三")
    form.find_element(By.NAME, "confidential").click()
    # A draft is saved while the call lasts.
    wait.until(lambda b: b.find_element(By.ID, "order-saved").text.startswith("草稿已保存"))
    # Submitting without a disposition: the form says which field.
    form.find_element(By.ID, "btn-submit").click()
    error = wait.until(lambda b: b.find_element(By.CSS_SELECTOR, '.field-error[data-for="disposition"]'))
    wait.until(lambda _: error.text == "必填")  # "required", in the page's language
    form.find_element(By.CSS_SELECTOR, "input[name=disposition][value=accepted]").click()
    if screenshot:  # the intake form, in English
        english_screenshot(page, Path(screenshot))
    form.find_element(By.ID, "btn-submit").click()
    wait.until(
        lambda b: b.find_element(By.ID, "order-message").get_attribute("data-submitted") == str(order_id)
    )

    headers = {"Authorization": f"Bearer {center.token('agent1001')}"}
    stored = httpx.get(f"{base}/api/v1/work-orders/{order_id}", headers=headers).json()
    assert stored["call_id"] == "1700000900.1"
    assert (stored["category"], stored["district"], stored["disposition"], stored["status"]) == (
        "ENV-NOISE",
        "xuhui",
        "accepted",
        "accepted",
    )
    assert stored["description"] == "小区旁工地夜间施工，噪音很大。"
    assert (stored["address"], stored["citizen_name"], stored["confidential"]) == (
        "漕溪北路 100 号",
        "张三",
        True,
    )
    assert stored["submitted_by"] == "agent1001" and stored["department"] == "区生态环境局"

    center.hang_up("1700000900.1")
    wait.until(state_is("ready"))  # wrap-up is 0 s in the default queue
    assert other.execute_script(POP_SEEN) is False
    assert CALLER not in other.page_source
    page.find_element(By.ID, "btn-logout").click()
    wait.until(state_is("logged_out"))


def english_screenshot(page: WebDriver, path: Path) -> None:
    """The desk during the call with the language switched to English (and back)."""
    Select(page.find_element(By.ID, "lang")).select_by_value("en")
    WebDriverWait(page, 5).until(lambda b: b.find_element(By.ID, "btn-ready").text == "Ready")
    assert page.find_element(By.ID, "link").text == "live"
    assert page.save_screenshot(str(path.with_name(f"{path.stem}-en{path.suffix}")))
    Select(page.find_element(By.ID, "lang")).select_by_value("zh-CN")


def test_only_the_agent_or_a_supervisor_opens_an_agents_desk(center: Center) -> None:
    base = center.owner.base_url
    own, other, boss = (
        {"Authorization": f"Bearer {center.token(u)}"} for u in ("agent1001", "agent1002", "sup")
    )
    assert httpx.get(f"{base}/api/v1/desk/1001", headers=own).json()["agent_id"] == "1001"
    assert httpx.get(f"{base}/api/v1/desk/1001", headers=other).status_code == 403
    assert httpx.get(f"{base}/api/v1/desk/1001/stream", headers=other).status_code == 403
    assert httpx.get(f"{base}/api/v1/desk/1001/stream").status_code == 401
    for headers in (own, boss):
        with httpx.stream("GET", f"{base}/api/v1/desk/1001/stream", headers=headers, timeout=10) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            assert '"agent_id":"1001"' in first
    me = httpx.get(f"{base}/api/v1/desk/me", headers=own).json()
    assert me == {"username": "agent1001", "role": "agent", "agent_id": "1001"}
    settings = httpx.get(f"{base}/agent/settings.json").json()
    assert settings == {"language": "zh-CN", "timezone": "UTC"}
    reasons = httpx.get(f"{base}/api/v1/desk/config", headers=own).json()["busy_reasons"]
    assert {
        "key": "break",
        "name": "Short break",
        "needs_approval": False,
        "limit_seconds": 2.000004,
    } in reasons


def test_busy_with_a_reason_that_needs_approval_goes_through_a_request(
    browsers: tuple[WebDriver, WebDriver], center: Center
) -> None:
    page, _ = browsers
    base = center.owner.base_url
    wait = sign_in(page, base, "agent1003")
    page.find_element(By.ID, "endpoint").send_keys("agent3")
    page.find_element(By.ID, "btn-login").click()
    wait.until(state_is("logged_in"))
    Select(page.find_element(By.ID, "busy-reason")).select_by_value("meal")
    page.find_element(By.ID, "btn-busy").click()
    box = wait.until(ec.visibility_of_element_located((By.ID, "busy-request")))
    assert box.get_attribute("data-status") == "pending" and "待审批" in box.text
    assert page.find_element(By.ID, "state").get_attribute("data-state") == "logged_in"  # not busy yet

    sup = {"Authorization": f"Bearer {center.token('sup')}"}
    [request] = [
        r
        for r in httpx.get(f"{base}/api/v1/busy-requests", params={"agent": "1003"}, headers=sup).json()
        if r["status"] == "pending"
    ]
    denied = httpx.post(
        f"{base}/api/v1/busy-requests/{request['id']}/deny", json={"comment": "排队人多"}, headers=sup
    )
    assert denied.status_code == 200, denied.text
    wait.until(lambda b: b.find_element(By.ID, "busy-request").get_attribute("data-status") == "denied")
    assert "被拒绝" in page.find_element(By.ID, "busy-request").text
    assert page.find_element(By.ID, "state").get_attribute("data-state") == "logged_in"

    page.find_element(By.ID, "btn-busy").click()  # ask again
    wait.until(lambda b: b.find_element(By.ID, "busy-request").get_attribute("data-status") == "pending")
    [request] = [
        r
        for r in httpx.get(f"{base}/api/v1/busy-requests", params={"agent": "1003"}, headers=sup).json()
        if r["status"] == "pending"
    ]
    approved = httpx.post(
        f"{base}/api/v1/busy-requests/{request['id']}/approve", json={"comment": ""}, headers=sup
    )
    assert approved.status_code == 200, approved.text
    wait.until(lambda b: b.find_element(By.ID, "busy-request").get_attribute("data-status") == "approved")
    wait.until(state_is("busy"))
    assert page.find_element(By.ID, "reason").text == "Meal"
    page.find_element(By.ID, "btn-logout").click()
    wait.until(state_is("logged_out"))


def test_a_direct_answer_cites_an_article_found_from_the_page(
    browsers: tuple[WebDriver, WebDriver], center: Center
) -> None:
    page, _ = browsers
    base = center.owner.base_url
    sup = {"Authorization": f"Bearer {center.token('sup')}"}
    article = httpx.post(
        f"{base}/api/v1/knowledge",
        json={
            "title": "住房公积金提取条件",
            "body": "购买自住住房的职工可以申请提取住房公积金。",
            "category": "CONSULT-HOUSING",
        },
        headers=sup,
    )
    assert article.status_code == 201, article.text
    article_id = article.json()["id"]

    wait = sign_in(page, base, "agent1001")
    page.find_element(By.ID, "endpoint").send_keys("agent1")
    page.find_element(By.ID, "btn-login").click()
    wait.until(state_is("logged_in"))
    page.find_element(By.ID, "btn-ready").click()
    wait.until(state_is("ready"))
    center.ami.originate_reason, center.ami.originate_delay = 4, 0.2
    center.place_call("1700000950.1", number="13700001111")
    form = WebDriverWait(page, 10).until(ec.visibility_of_element_located((By.ID, "order")))
    [order] = httpx.get(f"{base}/api/v1/work-orders", params={"call": "1700000950.1"}, headers=sup).json()[
        "items"
    ]
    order_id = str(order["id"])
    wait.until(
        lambda _: form.get_attribute("data-order-id") == order_id
    )  # this call's order, not the last one

    form.find_element(By.CSS_SELECTOR, "input[name=disposition][value=answered_directly]").click()
    wait.until(ec.visibility_of_element_located((By.ID, "kb")))
    page.find_element(By.ID, "kb-query").send_keys("公积金")
    page.find_element(By.ID, "kb-go").click()
    hit = wait.until(
        lambda b: b.find_element(By.CSS_SELECTOR, f'#kb-results li[data-article="{article_id}"]')
    )
    hit.click()
    wait.until(lambda b: "住房公积金提取条件" in b.find_element(By.ID, "kb-cited").text)
    Select(form.find_element(By.NAME, "category")).select_by_value("CONSULT-HOUSING")
    form.find_element(By.NAME, "description").send_keys("咨询公积金提取，已按知识库答复。")
    form.find_element(By.ID, "btn-submit").click()
    wait.until(lambda b: b.find_element(By.ID, "order-message").get_attribute("data-submitted") == order_id)

    stored = httpx.get(f"{base}/api/v1/work-orders/{order_id}", headers=sup).json()
    assert (stored["disposition"], stored["status"], stored["knowledge_article_id"]) == (
        "answered_directly",
        "closed",
        article_id,
    )
    center.hang_up("1700000950.1")
    wait.until(state_is("ready"))
    page.find_element(By.ID, "btn-logout").click()
    wait.until(state_is("logged_out"))
