"""The worker's operator page (/dlq) in a real headless browser (Debian's chromium through
chromedriver, driven by selenium): against a running worker with a dead letter in it, the
page lists it with its reason, store and fix; a receipt search shows the trace with the
NetSuite record read back; a screenshot is written to build/test-artefacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.factories import make_sale
from tests.integration.helpers import Outcomes, encode_sales, produce
from tillbridge.devstack.stack import WorkerProcess
from tillbridge.streams.stages.reasons import CATALOGUE

pytestmark = pytest.mark.integration

ARTEFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artefacts"


def _browser():  # type: ignore[no-untyped-def]
    """A headless chromium session, or a skip naming what is missing (see `make browser-tools`)."""
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium (pip install '.[test]')")
    if missing:
        pytest.skip(f"browser test needs {', '.join(missing)} (make browser-tools, as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or ""),
                            options=options)


def test_the_page_lists_dead_letters_and_traces_a_receipt(stack) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser()
    s = stack.settings
    bad = make_sale(pos_transaction_id="PG-BAD-1", store_id="S001")
    bad["tenders"][0]["tender_type"] = "BITCOIN"
    out = Outcomes(s)
    try:
        with WorkerProcess(s) as worker:
            produce(s, encode_sales(s, [make_sale(pos_transaction_id="PG-OK-1"), bad]))
            out.wait(2)
            assert httpx.get(f"{worker.url}/dlq", timeout=30).status_code == 200
            browser.get(f"{worker.url}/dlq")
            rows = browser.find_elements(By.CSS_SELECTOR, "table.letters tbody tr")
            cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
            assert len(cells) == 1, cells
            when, reason, store, receipt, stage, _msg, fix, _id = cells[0]
            assert (reason, store, receipt, stage) == ("unknown_tender", "S001", "PG-BAD-1",
                                                       "enrich")
            assert fix == CATALOGUE["unknown_tender"].fix
            assert "unknown_tender: 1" in browser.find_element(By.ID, "by-reason").text
            checks = browser.find_element(By.CSS_SELECTOR, "table.checks").text
            assert "sink_breaker ok closed" in checks and "refdata ok" in checks

            box = browser.find_element(By.ID, "receipt")
            box.send_keys("PG-OK-1")
            browser.find_element(By.ID, "trace-button").click()
            # The click submits the form; the traced page (Kafka and NetSuite reads within
            # the page's budgets) may arrive after click() returns on a loaded machine.
            trace = WebDriverWait(browser, 30).until(
                expected_conditions.presence_of_element_located((By.ID, "trace"))).text
            assert "Trace PG-OK-1" in trace and "posted" in trace
            netsuite = browser.find_element(By.CSS_SELECTOR, "table.netsuite").text
            assert "pos-sale-S001-PG-OK-1" in netsuite and "41.26" in netsuite
            ARTEFACTS.mkdir(parents=True, exist_ok=True)
            assert browser.save_screenshot(str(ARTEFACTS / "operator-page.png"))
    finally:
        browser.quit()
        out.close()
