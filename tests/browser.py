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
