"""The documentation site as a reader meets it: built strictly (as `make docs` builds it),
served over HTTP on 127.0.0.1 (Material's search runs in a web worker that fetches
search/search_index.json, which file:// refuses) and opened in headless Chromium. The pages
render, the sidebar navigates, the search box finds the protocol page, and no request any page
makes leaves the machine (Chromium's performance log records every one; test_docs.py checks
the built HTML statically, this is the dynamic check)."""

from __future__ import annotations

import functools
import inspect
import json
import re
import struct
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

import mlpsuite
from tests.browser import chromium, page_text, wait_until
from tests.docs_site import build_site

ROOT = Path(__file__).resolve().parents[1]
# Schemes that name nothing on the network: inline data, the page's own blobs, Chromium itself.
LOCAL_SCHEMES = {"data", "blob", "about", "chrome", "chrome-extension", "chrome-untrusted"}
# What every page the tests open is checked for: (path, words its <h1> holds).
PAGES = {
    "index.html": "mlpsuite",
    "how-to/compare.html": "Compare",
    "reference/config.html": "Config reference",
    "reference/api.html": "Python API",
}


class _QuietHandler(SimpleHTTPRequestHandler):
    """The site's files, without a log line per request; every path asked is kept."""

    served: list[str]

    def log_message(self, format, *args) -> None:  # noqa: A002  (the base class's name)
        pass

    def send_head(self):
        type(self).served.append(self.path)
        return super().send_head()


class Reader:
    """One browser session over the served site: it opens pages by path, and keeps every
    request the pages made (the performance log's Network events) and every <script src>,
    <link href>, <img src> and <iframe src> the pages held."""

    def __init__(self, session: webdriver.Chrome, base: str) -> None:
        self.session, self.base = session, base
        self.requests: list[str] = []
        self.responses: list[tuple[str, int]] = []
        self.loaded: dict[str, list[str]] = {}  # page URL -> the URLs its tags load

    def drain(self) -> None:
        """Move the performance log's new entries into `requests` and `responses`."""
        for entry in self.session.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])
            elif message["method"] == "Network.responseReceived":
                response = message["params"]["response"]
                self.responses.append((response["url"], response["status"]))

    def settle(self) -> None:
        """Once the page has loaded: note what its tags load, and drain the log."""
        wait_until(
            lambda: self.session.execute_script("return document.readyState") == "complete",
            timeout=30,
            what=f"{self.session.current_url} loading",
        )
        self.loaded[self.session.current_url] = self.session.execute_script(
            "return Array.from(document.querySelectorAll("
            "'script[src], img[src], iframe[src], link[href]'))"
            ".map(e => e.tagName === 'LINK' ? e.href : e.src)"
        )
        self.drain()

    def open(self, path: str) -> None:
        self.session.get(self.base + path)
        self.settle()

    def heading(self) -> str:
        return wait_until(
            lambda: self.session.find_element(By.CSS_SELECTOR, "article h1").text,
            timeout=30,
            what=f"the <h1> of {self.session.current_url}",
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, list[str]]]:
    """The site built with --strict into a temporary folder and served on 127.0.0.1: its base
    address and the list of paths the server was asked for."""
    out = build_site(tmp_path_factory.mktemp("site"))
    handler = type("Handler", (_QuietHandler,), {"served": []})
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(out))
    )  # port 0: a free one, chosen by the system with no race
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", handler.served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def reader(served) -> Iterator[Reader]:
    with chromium(performance_log=True) as session:
        # Every request goes to the server and into the log, none answered from the cache.
        session.execute_cdp_cmd("Network.enable", {})
        session.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        yield Reader(session, served[0])


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def _screenshot(reader: Reader, folder: Path, name: str) -> Path:
    """A PNG of the window as it shows now, its path printed (the engineer reports it)."""
    path = folder / f"{name}.png"
    assert reader.session.save_screenshot(str(path)), path
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk: the image's size
    assert width >= 1000 and height >= 600, (path, width, height)  # the 1400-px window
    assert len(data) > 20_000, (path, len(data))  # a rendered page, not a blank window
    print(f"screenshot: {path}")
    return path


def _words(text: str) -> str:
    return " ".join(text.split())


def _not_found(reader: Reader) -> None:
    title, text = reader.session.title, page_text(reader.session)
    assert "404" not in title and "Error response" not in title, (reader.session.current_url, title)
    assert "404 - Not found" not in text and "Error code: 404" not in text, title


def test_home_page_renders(reader, shots):
    reader.open("index.html")
    _not_found(reader)
    assert reader.heading() == "mlpsuite"
    assert reader.session.title.endswith("mlpsuite")
    # The sidebar lists every section of the nav.
    sidebar = reader.session.find_element(By.CSS_SELECTOR, "nav.md-nav--primary")
    for section in ("Tutorial", "How-to guides", "Concepts", "Reference"):
        assert section in sidebar.text, section
    _screenshot(reader, shots, "home")


def test_how_to_page_renders(reader, shots):
    reader.open("how-to/compare.html")
    _not_found(reader)
    assert reader.heading().startswith("Compare"), reader.heading()
    assert "nuisance" in page_text(reader.session)
    _screenshot(reader, shots, "how-to-compare")


def test_config_reference_renders(reader):
    reader.open("reference/config.html")
    _not_found(reader)
    assert reader.heading() == "Config reference"
    text = page_text(reader.session)
    for key in ("training.vectorize", "optimizer.learning_rate", "compare.target"):
        assert key in text, key


def test_api_page_shows_mlpsuite_run(reader, shots):
    reader.open("reference/api.html#mlpsuite.run")
    _not_found(reader)
    assert reader.heading() == "Python API"
    heading = reader.session.find_element(By.ID, "mlpsuite.run")
    assert heading.is_displayed()
    # mkdocstrings' heading: the full name and the signature, its parameters as the code has them.
    signature = _words(heading.text)
    assert signature.startswith("mlpsuite.run("), signature
    parameters = list(inspect.signature(mlpsuite.run).parameters)
    assert all(name in signature for name in parameters), (signature, parameters)
    # The docstring under it: its first words and its parameters' table.
    function: WebElement = heading.find_element(
        By.XPATH, "./ancestor::div[contains(@class, 'doc-function')][1]"
    )
    doc = inspect.getdoc(mlpsuite.run)
    assert doc is not None
    first = _words(doc.replace("`", ""))[:60]  # Markdown: `code` renders without backticks
    assert first in _words(function.text), (first, function.text[:300])
    table = function.find_element(
        By.XPATH,
        ".//p[span[contains(@class, 'doc-section-title') and normalize-space() = 'Parameters:']]"
        "/following-sibling::*[1]//table",  # Material wraps each table in a scrolling <div>
    )
    rows = [cell.text for cell in table.find_elements(By.CSS_SELECTOR, "tbody tr td:first-child")]
    assert "tracking_uri" in rows and set(rows) <= set(parameters), rows
    _screenshot(reader, shots, "api-mlpsuite-run")


def test_the_sidebar_navigates(reader):
    reader.open("index.html")
    for href, title in (
        ("concepts/statistics.html", "The statistics"),
        ("how-to/run-grids.html", "Run and resume a grid"),
    ):
        link = reader.session.find_element(
            By.CSS_SELECTOR, f'nav.md-nav--primary a.md-nav__link[href$="{href}"]'
        )
        assert link.is_displayed() and _words(link.text) == title, (href, link.text)
        link.click()
        wait_until(
            lambda href=href: urlsplit(reader.session.current_url).path == f"/{href}",
            timeout=30,
            what=f"{href} after clicking {title!r}",
        )
        reader.settle()
        _not_found(reader)
        assert reader.heading() == title


def test_the_search_box_finds_the_protocol_page(reader, served):
    reader.open("index.html")
    box = reader.session.find_element(By.CSS_SELECTOR, "input.md-search__input")
    box.click()
    box.send_keys("nuisance")

    def protocol_result() -> list[str]:
        links = reader.session.find_elements(By.CSS_SELECTOR, "li.md-search-result__item a")
        paths = [urlsplit(link.get_attribute("href") or "").path for link in links]
        return paths if "/how-to/compare.html" in paths else []

    paths = wait_until(protocol_result, timeout=30, what="a search result for 'nuisance'")
    assert all(path.endswith(".html") for path in paths), paths
    # The worker fetched the index from the server (it could not from file://).
    assert "/search/search_index.json" in served[1], served[1]
    reader.drain()


def test_no_request_leaves_the_machine(reader, served):
    for path in PAGES:  # every page, whichever tests ran before
        if not any(urlsplit(url).path == f"/{path}" for url in reader.loaded):
            reader.open(path)
    reader.drain()

    def leaves(url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in LOCAL_SCHEMES:
            return False
        return parts.scheme not in ("http", "https") or parts.hostname != "127.0.0.1"

    # The log saw the pages and their assets: an empty log would prove nothing.
    assert all(reader.base + path in reader.requests for path in PAGES), reader.requests
    assert any(re.search(r"/assets/javascripts/bundle\.\w+\.min\.js$", u) for u in reader.requests)
    # The log holds the web worker's requests too: whatever the server answered, it recorded.
    logged = {urlsplit(url).path for url in reader.requests if url.startswith(reader.base)}
    assert "/search/search_index.json" in logged
    assert sorted({urlsplit(path).path for path in served[1]} - logged) == []
    offenders = sorted({url for url in reader.requests if leaves(url)})
    assert offenders == [], f"requests that leave the machine: {offenders}"
    failed = sorted({(url, status) for url, status in reader.responses if status >= 400})
    assert failed == [], f"requests the server could not answer: {failed}"
    tags = {page: [url for url in urls if leaves(url)] for page, urls in reader.loaded.items()}
    remote = {page: urls for page, urls in tags.items() if urls}
    assert remote == {}, f"tags pointing to another machine: {remote}"
    hosts = sorted({urlsplit(url).netloc or urlsplit(url).scheme for url in reader.requests})
    print(f"{len(reader.requests)} requests over {len(reader.loaded)} pages, hosts: {hosts}")
