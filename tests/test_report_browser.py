"""The HTML report in a real headless browser (Debian's Chromium driven by Playwright): it loads with no
console errors and no network requests, and reads on a phone without sideways scrolling.

Needs Chromium on the machine (`apt-get install chromium`); skipped, saying so, where it is not.
`TUNEFORGE_REPORT_SCREENSHOT=docs/images/report-phone.png` keeps the phone-sized screenshot
(set `TUNEFORGE_REPORT_RUN=RUN_DIR` to shoot a real run instead of the test's tiny one).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from tuneforge.analysis.report import write_report
from tuneforge.config import load_config
from tuneforge.engine.run import train

from conftest import DATA

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here: apt-get install chromium to run the browser test")
# quiet, offline Chromium: without these it phones home at start and logs refused connections
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}


def _report(tmp_path) -> Path:
    if os.environ.get("TUNEFORGE_REPORT_RUN"):
        return write_report([os.environ["TUNEFORGE_REPORT_RUN"]], tmp_path / "report.html")
    config = {
        "data": {"train": str(DATA / "reviews_train.csv"), "text_column": "review", "label_column": "sentiment"},
        "train": {"method": "tfidf"},
        "output": {"dir": str(tmp_path / "runs"), "name": "browser"},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return train(load_config(path)).run_dir / "report.html"


def test_the_report_loads_offline_with_no_errors_and_fits_a_phone(tmp_path):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    report = _report(tmp_path)
    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE)
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(report.resolve().as_uri(), wait_until="load")
            images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
            page_width = page.evaluate("document.documentElement.scrollWidth")
            headings = page.eval_on_selector_all("h3", "els => els.map(e => e.textContent.trim())")
            visible = page.is_visible("text=Model card")
            if os.environ.get("TUNEFORGE_REPORT_SCREENSHOT"):
                page.screenshot(path=os.environ["TUNEFORGE_REPORT_SCREENSHOT"], full_page=False)
        finally:
            browser.close()
    assert errors == []
    fetched = [url for url in requests if not url.startswith("data:") and url != report.resolve().as_uri()]
    assert fetched == []  # everything the page shows is inside it
    assert images and all(done and width > 0 for done, width in images)  # every inline plot decodes
    assert page_width <= PHONE["width"]  # wide tables scroll inside their box, the page does not
    assert {"Results", "Data", "Plots", "Slices", "Cost", "Model card"} <= set(headings) and visible
