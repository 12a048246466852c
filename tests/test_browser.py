"""Every chapter of the built book, opened in headless Chromium: its figures show, no output is an error.

The browser is driven over the Chrome DevTools Protocol (a websocket), with nothing but the
standard library and websocket-client. Screenshots of each page are saved under
``$BOOK_SCREENSHOTS`` when that is set, for a person to look at.
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from .helpers import notebooks

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="no chromium on this machine (apt-get install chromium); CI installs it",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """Just enough of the DevTools protocol: open a page, wait for it, run JS, take a screenshot."""

    def __init__(self):
        import websocket

        assert CHROMIUM, "chromium is not installed: apt-get install chromium"
        self.port = free_port()
        self.profile = tempfile.mkdtemp()
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={self.profile}", f"--remote-debugging-port={self.port}",
             "--window-size=1280,2000", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 30
        while True:
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json", timeout=2))
                page = next(t for t in targets if t["type"] == "page")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.next_id = 0
        self.call("Page.enable")

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def open(self, url: str, timeout: float = 60) -> None:
        self.call("Page.navigate", url=url)
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.js("document.readyState")
            pending = self.js("Array.from(document.images).filter(i => !i.complete).length")
            if state == "complete" and pending == 0:
                return
            time.sleep(0.2)
        raise TimeoutError(f"{url} did not finish loading")

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


FIGURES = """Array.from(document.querySelectorAll('.cell_output img')).map(i => [i.naturalWidth, i.naturalHeight])"""
ERRORS = """Array.from(document.querySelectorAll('.cell_output .output.traceback, .cell_output .output.error'))
              .map(e => e.innerText.slice(0, 200))"""


@needs_browser
def test_every_chapter_shows_its_figures_and_no_error(built, browser):
    shots = Path(os.environ["BOOK_SCREENSHOTS"]) if os.environ.get("BOOK_SCREENSHOTS") else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    checked = []
    for chapter in notebooks():
        page = built / f"{chapter}.html"
        browser.open(page.as_uri())
        figures = browser.js(FIGURES)
        assert figures, f"{chapter}: the page shows no figure"
        broken = [f for f in figures if f[0] == 0 or f[1] == 0]
        assert not broken, f"{chapter}: {len(broken)} of {len(figures)} figures did not load"
        errors = browser.js(ERRORS)
        assert not errors, f"{chapter}: an output on the page is an error: {errors[0]}"
        title = browser.js("document.querySelector('h1') && document.querySelector('h1').innerText")
        assert title and title.strip()[0].isdigit(), f"{chapter}: no numbered chapter title, got {title!r}"
        if shots:  # the first and the last figure in view, for a person to look at
            for which, index in (("first", "0"), ("last", "imgs.length - 1")):
                browser.js(f"(() => {{ const imgs = document.querySelectorAll('.cell_output img'); "
                           f"imgs[{index}].scrollIntoView({{block: 'center'}}); }})()")
                time.sleep(0.3)
                browser.screenshot(shots / f"{Path(chapter).name}.{which}.png")
        checked.append((chapter, len(figures)))
    print("checked:", checked)
