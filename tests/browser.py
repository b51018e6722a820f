"""Headless Chromium (Debian's, driven by Playwright) for tests that judge a page by what it says once its
scripts ran, as a person would, rather than by its bytes."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

# No first-run, sync or component traffic: the machine has no route out, and the page's own calls are the test.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("BROWSER_REQUIRED") == "1":
            pytest.fail("Debian's chromium is not installed, and BROWSER_REQUIRED=1")
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def read_page(url: str) -> tuple[dict[str, str], dict[str, list[str]], str]:
    """What a person sees at ``url`` in headless Chromium once the page rendered: the response headers, the
    headings by level and the visible text."""
    with chromium() as browser:
        page = browser.new_page()
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        page.wait_for_load_state("load")
        headings = {level: [h.strip() for h in page.locator(level).all_inner_texts()] for level in ("h1", "h2", "h3")}
        return response.all_headers(), headings, page.inner_text("body")
