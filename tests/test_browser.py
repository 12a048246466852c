"""Every page of the built book, opened in headless Chromium as a reader would, with no network.

The browser is driven over the Chrome DevTools Protocol (a websocket), with nothing but the
standard library and websocket-client. Each page is opened once (the ``pages`` fixture) and
measured; each test then reports every offending item of every page:

* no request leaves the machine: the DevTools ``Fetch`` domain pauses every request of the
  page; files and loopback are let through, anything else is failed and recorded, so a test
  can name what the page tried to fetch (a CDN's MathJax, a web font). A second net,
  ``--host-resolver-rules``, makes every host name unresolvable for the whole browser,
  which stops what the page's Fetch domain does not see (service workers, the browser's own
  background requests);
* the maths is typeset: every ``.math`` element holds MathJax's output, and no raw ``\\[``,
  ``\\(``, ``$$``, ``\\begin{`` or ``$x$`` is left in the visible prose;
* every output fits its box: nothing inside an output area is wider than the area;
* every image has alt text that says something: not empty, not a file name or a hash;
* the figures load, no output is an error, the chapter title is numbered.

The checks themselves are tested on small pages made to fail them (``test_the_checks_find_...``).
Screenshots of each chapter are saved under ``$BOOK_SCREENSHOTS`` when that is set, for a person
to look at.
"""

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from alexnet_lib.tables import html_table

from .helpers import chapters, notebooks

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="no chromium on this machine (apt-get install chromium); CI installs it",
)
LOCAL_SCHEMES = ("file", "data", "blob", "about", "chrome", "devtools")
LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def leaves_the_machine(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme not in LOCAL_SCHEMES and (parts.hostname or "") not in LOOPBACK


class Browser:
    """Just enough of the DevTools protocol: open a page offline, wait for it and its maths, run
    JS, take a screenshot. ``blocked`` lists the requests that tried to leave the machine since
    the last ``open``."""

    def __init__(self):
        import websocket

        assert CHROMIUM, "chromium is not installed: apt-get install chromium"
        self.port = free_port()
        self.profile = tempfile.mkdtemp()
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
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
        self.blocked = []
        self.call("Page.enable")
        self.call("Fetch.enable", patterns=[{"urlPattern": "*"}])

    def send(self, method, **params) -> int:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return self.next_id

    def on_event(self, msg) -> None:
        """A paused request goes on if it stays on this machine; otherwise it fails, and is noted."""
        if msg.get("method") != "Fetch.requestPaused":
            return
        request_id, url = msg["params"]["requestId"], msg["params"]["request"]["url"]
        if leaves_the_machine(url):
            self.blocked.append(url)
            self.send("Fetch.failRequest", requestId=request_id, errorReason="BlockedByClient")
        else:
            self.send("Fetch.continueRequest", requestId=request_id)

    def call(self, method, **params):
        wanted = self.send(method, **params)
        while True:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.on_event(msg)
            elif msg.get("id") == wanted:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def open(self, url: str, timeout: float = 60) -> None:
        """Open ``url``, wait until it and its images have loaded and MathJax (if any) is done."""
        self.blocked = []
        self.call("Page.navigate", url=url)
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.js("document.readyState")
            pending = self.js("Array.from(document.images).filter(i => !i.complete).length")
            if state == "complete" and pending == 0:
                self.js("window.MathJax && MathJax.startup && MathJax.startup.promise "
                        "? MathJax.startup.promise.then(() => true) : false", await_promise=True)
                return
            time.sleep(0.2)
        raise TimeoutError(f"{url} did not finish loading")

    def js(self, expression: str, await_promise: bool = False):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=await_promise)
        if "exceptionDetails" in result:
            raise RuntimeError(f"the page's JavaScript failed: {result['exceptionDetails'].get('text')} in "
                               f"{expression[:200]}")
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


# ----------------------------------------------------------------- what is measured on a page
FIGURES = """Array.from(document.querySelectorAll('.cell_output img')).map(i => [i.naturalWidth, i.naturalHeight])"""
ERRORS = """Array.from(document.querySelectorAll('.cell_output .output.traceback, .cell_output .output.error'))
              .map(e => e.innerText.slice(0, 200))"""
# Where a thing sits on the page, for the reports: the first line of its cell's code.
CELL_OF = """function cellOf(el) {
  const cell = el.closest('.cell');
  const input = cell && cell.querySelector('.cell_input');
  return input ? input.textContent.trim().split('\\n')[0].slice(0, 70) : '(not in a code cell)';
}"""
# The maths (display and inline) Sphinx left for MathJax, and whether MathJax replaced it with its output.
MATHS = """Array.from(document.querySelectorAll('.math')).map(m => ({
  typeset: m.querySelector('mjx-container') !== null,
  tex: m.textContent.trim().replace(/\\s+/g, ' ').slice(0, 80)}))"""
# Raw TeX left in the visible text, outside code, outputs printed as text, and MathJax's own output:
# \[, \(, $$, \begin{, and $...$ that starts like TeX ($x$, $\alpha$; not a price such as $5).
RAW_TEX = r"""(() => {
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight, .MathJax';
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || el.closest(skip) || el.getClientRects().length === 0) continue;
    for (const m of node.textContent.matchAll(/\\\[|\\\(|\$\$|\\begin\{|\$[A-Za-z\\{][^$]{0,80}\$/g)) {
      const t = node.textContent;
      found.push(t.slice(Math.max(0, m.index - 30), m.index + 50).replace(/\s+/g, ' '));
    }
  }
  return found;
})()"""
# Every output whose content is wider than its output area (scrolled or spilling over).
OVERFLOW = CELL_OF + """
(() => {
  const found = [];
  document.querySelectorAll('.cell_output').forEach(area => {
    const box = area.getBoundingClientRect();
    if (box.width === 0) return;  // a folded output
    for (const output of area.children) {
      let widest = box.width;
      for (const el of [output, ...output.querySelectorAll('*')]) {
        const r = el.getBoundingClientRect();
        if (r.width === 0) continue;
        const hidden = el.scrollWidth - el.clientWidth;  // content scrolled out of sight
        if (hidden > 1) widest = Math.max(widest, box.width + hidden);
        widest = Math.max(widest, r.right - box.left);
      }
      if (widest > box.width + 1) {
        const img = output.querySelector('img');
        const text = output.innerText.trim().split('\\n').sort((a, b) => b.length - a.length)[0] || '';
        found.push({cell: cellOf(area), box: Math.round(box.width), content: Math.round(widest),
                    what: text ? text.slice(0, 70) : (img ? 'image ' + img.getAttribute('src') : output.className)});
      }
    }
  });
  return found;
})()"""
IMAGES = CELL_OF + """
Array.from(document.images).map(i => ({alt: i.getAttribute('alt'), src: i.getAttribute('src') || '',
                                        cell: cellOf(i)}))"""
FILE_NAME = re.compile(r"(^|/)[^\s/]+\.(png|jpe?g|gif|svg|webp)$|[0-9a-f]{16,}", re.IGNORECASE)


def bad_alt(alt) -> bool:
    """Alt text that tells a reader nothing: none, blank, or a file name or hash."""
    return alt is None or not alt.strip() or bool(FILE_NAME.search(alt.strip()))


def measure(browser) -> dict:
    """Everything the tests check, measured on the page open in ``browser``."""
    maths = browser.js(MATHS)
    return {
        "blocked": list(browser.blocked),
        "figures": browser.js(FIGURES),
        "errors": browser.js(ERRORS),
        "title": browser.js("document.querySelector('h1') && document.querySelector('h1').innerText"),
        "maths": len(maths),
        "untypeset": [m["tex"] for m in maths if not m["typeset"]],
        "raw_tex": browser.js(RAW_TEX),
        "mathjax": browser.js("Boolean(window.MathJax && MathJax.version)"),
        "overflow": browser.js(OVERFLOW),
        "bad_alt": [i for i in browser.js(IMAGES) if bad_alt(i["alt"])],
    }


def screenshots(browser, folder: Path, name: str) -> None:
    """The first and the last figure in view, for a person to look at."""
    for which, index in (("first", "0"), ("last", "imgs.length - 1")):
        browser.js(f"(() => {{ const imgs = document.querySelectorAll('.cell_output img'); "
                   f"if (imgs.length) imgs[{index}].scrollIntoView({{block: 'center'}}); }})()")
        time.sleep(0.3)
        browser.screenshot(folder / f"{name}.{which}.png")


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


@pytest.fixture(scope="module")
def pages(built, browser) -> dict:
    """{page: its measurements} for every page of the table of contents, each opened once."""
    shots = Path(os.environ["BOOK_SCREENSHOTS"]) if os.environ.get("BOOK_SCREENSHOTS") else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    out = {}
    for page in chapters():
        browser.open((built / f"{page}.html").as_uri())
        out[page] = measure(browser)
        if shots and page in notebooks():
            screenshots(browser, shots, Path(page).name)
    return out


def report(pages: dict, describe) -> str:
    """Every offending item of every page, one per line, under its page."""
    lines = []
    for page, measured in pages.items():
        items = describe(measured)
        if items:
            lines.append(f"{page}: {len(items)}")
            lines += [f"    {item}" for item in items]
    return "\n".join(lines)


def maths_problems(m) -> list:
    out = [f"not typeset: {tex}" for tex in m["untypeset"]]
    out += [f"raw TeX in the text: ...{text}..." for text in m["raw_tex"]]
    if (m["maths"] or m["raw_tex"]) and not m["mathjax"]:
        out.append("MathJax did not load")
    return out


def overflow_problems(m) -> list:
    return [f"{o['content']} px in a box of {o['box']} px: {o['what']!r} (cell: {o['cell']})" for o in m["overflow"]]


def alt_problems(m) -> list:
    return [f"alt={i['alt']!r} src={i['src'].rsplit('/', 1)[-1]} (cell: {i['cell']})" for i in m["bad_alt"]]


# ---------------------------------------------------------------------------------- the book
@needs_browser
def test_no_page_sends_a_request_off_the_machine(pages):
    offenders = report(pages, lambda m: m["blocked"])
    assert not offenders, "requests that would leave the machine (blocked):\n" + offenders


@needs_browser
def test_the_maths_is_typeset_offline(pages):
    with_maths = [page for page, m in pages.items() if m["maths"]]
    assert "book/04_lrn" in with_maths, f"the LRN formula of chapter 4 was not found; pages with maths: {with_maths}"
    offenders = report(pages, maths_problems)
    assert not offenders, "maths not typeset with the network blocked:\n" + offenders


@needs_browser
def test_every_chapter_shows_its_figures_and_no_error(pages):
    for chapter in notebooks():
        m = pages[chapter]
        assert m["figures"], f"{chapter}: the page shows no figure"
        broken = [f for f in m["figures"] if f[0] == 0 or f[1] == 0]
        assert not broken, f"{chapter}: {len(broken)} of {len(m['figures'])} figures did not load"
        assert not m["errors"], f"{chapter}: an output on the page is an error: {m['errors'][0]}"
        assert m["title"] and m["title"].strip()[0].isdigit(), f"{chapter}: no numbered chapter title: {m['title']!r}"


@needs_browser
def test_every_output_fits_its_box(pages):
    offenders = report(pages, overflow_problems)
    assert not offenders, "outputs wider than their box (the reader must scroll sideways):\n" + offenders


@needs_browser
def test_every_image_has_alt_text(pages):
    offenders = report(pages, alt_problems)
    assert not offenders, "images whose alt text is empty or a file name:\n" + offenders


# ------------------------------------------------------- the checks, on pages made to fail them
BAD_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script></head>
<body style="margin: 0">
<div class="math">\\[ b = a / (k + \\alpha \\sum a^2)^\\beta \\]</div>
<p>inline \\(x^2\\) and $$y$$ in prose, $\\alpha$ unparsed, and a price: $5 or $6</p>
<pre>code may hold \\( and $$ freely</pre>
<div class="cell"><div class="cell_input">print("a very long line")</div>
  <div class="cell_output" style="width: 300px"><div class="output"><pre style="overflow: auto">
{long}</pre></div></div></div>
<div class="cell"><div class="cell_input">fits()</div>
  <div class="cell_output" style="width: 300px"><div class="output"><pre>short</pre></div></div></div>
<div class="cell"><div class="cell_input">plain_table()</div>
  <div class="cell_output" style="width: 300px"><div class="output">{plain_table}</div></div></div>
<div class="cell"><div class="cell_input">html_table()</div>
  <div class="cell_output" style="width: 300px"><div class="output">{fitted_table}</div></div></div>
<img src="{png}" alt="../_images/c961979ed53d1404b7014ce2100d872c.png">
<img src="{png}" alt="">
<img src="{png}">
<img src="{png}" alt="conv1's 96 kernels, tower 0 above tower 1">
</body></html>"""
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAAB"
       "JRU5ErkJggg==")  # one pixel


@needs_browser
def test_the_checks_find_what_they_look_for(browser, tmp_path):
    """A page that loads MathJax from a CDN, with wide outputs and images without alt text: the
    request is blocked and every problem is reported; the good items are not."""
    rows = [["conv1_kernels_of_tower_zero_after_ninety_epochs", 0.123456, "a" * 60]] * 3
    plain = "<table><tr>" + "".join(f"<td style='white-space: nowrap'>{c}</td>" for c in rows[0]) + "</tr></table>"
    page = tmp_path / "bad.html"
    page.write_text(BAD_PAGE.format(long="x" * 400, png=PNG, plain_table=plain,
                                    fitted_table=html_table(rows, ["name", "value", "notes"])._repr_html_()))
    browser.open(page.as_uri())
    m = measure(browser)
    assert m["blocked"] == ["https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"]
    problems = maths_problems(m)
    assert any(p.startswith("not typeset: \\[ b = a") for p in problems), problems
    assert sum("raw TeX" in p for p in problems) == 5, problems  # \[ of the div; \(, $$, $$ and $\alpha$ of the prose
    assert "MathJax did not load" in problems
    assert not any("freely" in p for p in problems), "text in <pre> is code, not maths"
    wide = overflow_problems(m)
    assert len(wide) == 2, wide  # the long line and the plain table; the short line and html_table fit
    assert "'xxxxxxxx" in wide[0] and 'print("a very long line")' in wide[0] and "box of 300 px" in wide[0]
    assert "plain_table()" in wide[1]
    alts = alt_problems(m)
    assert len(alts) == 3 and "alt=None" in alts[2] and "alt=''" in alts[1], alts


def test_alt_text_rules():
    for alt in (None, "", "  ", "../_images/c961979ed53d1404b7014ce2100d872c975f.jpg", "figure.png",
                "8f3a9c2e1d4b5a6f7e8d"):
        assert bad_alt(alt), alt
    for alt in ("conv1 kernels, tower 0 above tower 1", "Training error against epochs for ReLU and tanh"):
        assert not bad_alt(alt), alt


def test_what_leaves_the_machine():
    for url in ("https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js", "http://example.org/", "wss://x.y/z"):
        assert leaves_the_machine(url), url
    for url in ("file:///book/_static/mathjax/tex-chtml.js", "data:image/png;base64,AAAA", "http://127.0.0.1:8000/",
                "http://localhost/x", "about:blank"):
        assert not leaves_the_machine(url), url
