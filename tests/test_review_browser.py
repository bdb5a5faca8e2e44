"""The review page in a real headless browser: sign in, approve one, reject one, check the audit.

Debian's chromium and chromedriver drive it through Selenium; selenium-manager is never asked
for a driver (it would go to the network). Skipped only when the browser is not installed.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromedriver (apt-get install chromium chromium-driver)",
)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

from safegen.review.events import AssetStatus  # noqa: E402
from safegen.review.web import ReviewerCredentials, create_app  # noqa: E402
from tests.test_review_web import APPROVED, PENDING, REJECTED, TOKEN, Uploads, png  # noqa: E402


@pytest.fixture
def uploads(tmp_path: Path) -> Uploads:
    """An embedded store with one image in each status."""
    uploads = Uploads(tmp_path / "store")
    uploads.put(png(1), key=PENDING, metadata={"uploader": "ann"}, action="review")
    uploads.put(png(2), key=APPROVED, action="allow")
    uploads.put(png(3), key=REJECTED, action="block")
    return uploads


@pytest.fixture
def server(uploads: Uploads) -> Iterator[str]:
    """The review page served by uvicorn on a free loopback port, in a thread."""
    import uvicorn

    app = create_app(
        uploads.store, audit=uploads.audit, credentials=ReviewerCredentials.shared(TOKEN)
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # readiness, not a timing assertion
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Headless chromium with a fresh profile, driven by Debian's chromedriver."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(str(CHROMEDRIVER), log_output=os.devnull)
    driver = webdriver.Chrome(service=service, options=options)
    driver.implicitly_wait(10)
    try:
        yield driver
    finally:
        driver.quit()


def _decide(browser: WebDriver, base: str, key: str, action: str, reason: str) -> None:
    browser.get(f"{base}/asset?key={key}")
    browser.find_element(By.ID, f"{action}-reason").send_keys(reason)
    browser.find_element(By.ID, action).click()
    done = browser.find_element(By.ID, "done").text
    assert done == {"approve": "Image approved.", "reject": "Image rejected."}[action]


def test_sign_in_approve_one_reject_one(
    browser: webdriver.Chrome, server: str, uploads: Uploads
) -> None:
    """A reviewer signs in, approves a pending image, rejects an approved one; the audit agrees."""
    browser.get(f"{server}/queue/pending")
    assert browser.current_url == f"{server}/login"  # not signed in: sent to the form
    browser.find_element(By.ID, "name").send_keys("Rosalind")
    browser.find_element(By.ID, "secret").send_keys(TOKEN)
    browser.find_element(By.ID, "sign-in").click()
    assert browser.find_element(By.ID, "reviewer").text == "Rosalind"

    # The pending queue shows the pending image with its thumbnail, loaded.
    card = browser.find_element(By.CSS_SELECTOR, f'li[data-key="{PENDING}"] img')
    script = "return arguments[0].complete && arguments[0].naturalWidth"
    assert WebDriverWait(browser, 20).until(lambda b: b.execute_script(script, card)) > 0

    browser.find_element(By.CSS_SELECTOR, f'li[data-key="{PENDING}"] a').click()
    assert "Weapons" in browser.page_source
    _decide(browser, server, PENDING, "approve", "a toy, not a weapon")
    _decide(browser, server, APPROVED, "reject", "shows a licence plate")

    store, audit = uploads.store, uploads.audit
    assert store.get(PENDING).status is AssetStatus.APPROVED
    assert store.get(APPROVED).status is AssetStatus.REJECTED
    assert store.get(REJECTED).status is AssetStatus.REJECTED
    assert store.deliverable(PENDING)
    assert not store.deliverable(APPROVED)
    approved, rejected = audit.history(PENDING)[-1], audit.history(APPROVED)[-1]
    assert (approved.event, approved.actor, approved.reason) == (
        "approve",
        "Rosalind",
        "a toy, not a weapon",
    )
    assert (rejected.event, rejected.actor, rejected.reason) == (
        "reject",
        "Rosalind",
        "shows a licence plate",
    )
    assert audit.verify().ok

    # The history on the page shows the reviewer's decision.
    last = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")[-1]
    cells = [cell.text for cell in last.find_elements(By.TAG_NAME, "td")]
    assert cells[1:] == ["reject", "Rosalind", "shows a licence plate"]

    # Nothing the pages did broke the Content-Security-Policy (no inline script or style).
    console = browser.get_log("browser")  # type: ignore[no-untyped-call]
    problems = [entry["message"] for entry in console if entry["level"] == "SEVERE"]
    assert problems == []

    # Signing out ends the session: the queue sends the browser back to the form.
    browser.find_element(By.ID, "logout").click()
    browser.get(f"{server}/queue/rejected")
    assert browser.current_url == f"{server}/login"
