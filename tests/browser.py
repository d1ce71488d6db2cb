"""Debian's headless Chromium driven by Selenium through Debian's chromedriver: nothing is
downloaded (Selenium Manager runs only when no driver path is given)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

T = TypeVar("T")

# The closed network refuses Chromium's own connections (updates, sync, safe browsing) many at
# a time: these flags keep it to the page under test.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1200",
)


def chromium_paths() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        raise AssertionError(
            "the browser test needs Debian's chromium and chromium-driver; .ci/run installs them "
            "(apt-get install chromium chromium-driver)"
        )
    return browser, driver


@contextmanager
def chromium(performance_log: bool = False) -> Iterator[webdriver.Chrome]:
    """A headless Chromium session. `performance_log` records the DevTools' Network events
    (every request a page makes), read with `session.get_log("performance")`."""
    browser, driver = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    if performance_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    profile = tempfile.mkdtemp(prefix="mlpsuite-chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    session = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield session
    finally:
        session.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_until(check: Callable[[], T | None], timeout: float = 60, what: str = "the page") -> T:
    """`check()`'s first truthy value, polled; an AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except Exception:  # the page is still rendering: the element is not there yet
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what} did not appear within {timeout} s")


def page_text(session: webdriver.Chrome) -> str:
    return session.find_element(By.TAG_NAME, "body").text


def click_all(session: webdriver.Chrome, text: str) -> int:
    """Click every element whose own text is `text` ("Show more"); how many there were."""
    found = session.find_elements(By.XPATH, f"//*[normalize-space(text())='{text}']")
    for element in found:
        element.click()
    return len(found)


def loaded_images(session: webdriver.Chrome, src_part: str) -> list[dict]:
    """Every <img> whose URL holds `src_part`: its URL, natural width and whether it loaded."""
    return session.execute_script(
        "return Array.from(document.images).filter(i => i.src.includes(arguments[0]))"
        ".map(i => ({src: i.src, width: i.naturalWidth, complete: i.complete}))",
        src_part,
    )
