"""Headless Debian chromium through chromedriver (selenium), for the HTML report: a fresh profile per browser, no
network, no component updates. The report is opened from a file:// path as an administrator would open it.

Without chromium the tests skip, except in CI (the CI variable set): there a missing browser is a failure, since
`make deps` installs it (tests/debian-packages.txt)."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = REPO / ".build" / "test-artifacts" / "report"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def require_chromium() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.exists(p) and os.access(p, os.X_OK))]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the Python package selenium")
    if not missing:
        return
    text = "browser tests need Debian chromium and chromium-driver (make deps installs them): missing " + ", ".join(
        missing)
    if os.environ.get("CI"):
        pytest.fail(text)
    pytest.skip(text)


@contextlib.contextmanager
def chromium(javascript: bool = True, width: int = 1280, height: int = 900) -> Iterator:
    """A selenium driver for a fresh headless chromium; quit and its profile removed afterwards."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="epns-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(120)
        driver.set_script_timeout(120)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_report(driver, path: Path) -> None:
    driver.get(path.resolve().as_uri())


def screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(target))
    return target


def visible_hosts(driver) -> list:
    """Host names of the matrix rows the browser actually lays out (hidden rows have no offsetParent)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('table.matrix tbody tr'))"
        ".filter(function (r) { return r.offsetParent !== null; })"
        ".map(function (r) { return r.cells[0].firstChild.textContent; });")
