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
* every code block a reader sees (a cell's input that is not folded, a code block of the prose)
  fits its box in a window 1280 px wide: its content is no wider than the part shown, so the
  reader never scrolls sideways to read the code. The counts (blocks shown, blocks too wide)
  for another width: ``python -m tests.test_browser --width 1300 _build/html``;
* every image has alt text that says something: not empty, not a file name or a hash;
* the figures load, no output is an error, the chapter title is numbered.

The checks themselves are tested on small pages made to fail them (``test_the_..._find_...``).
Screenshots of each chapter are saved under ``$BOOK_SCREENSHOTS`` when that is set, for a person
to look at.
"""

import base64
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from alexnet_lib.tables import html_table

from .helpers import chapters, code_cells, notebooks, shows_its_code

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="no chromium on this machine (apt-get install chromium); CI installs it",
)
LOCAL_SCHEMES = ("file", "data", "blob", "about", "chrome", "devtools")
LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")
#: the width of the browser window, in CSS pixels: a laptop's screen
WINDOW_WIDTH = 1280


def leaves_the_machine(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme not in LOCAL_SCHEMES and (parts.hostname or "") not in LOOPBACK


class Browser:
    """Just enough of the DevTools protocol: open a page offline, wait for it and its maths, run
    JS, take a screenshot. ``blocked`` lists the requests that tried to leave the machine since
    the last ``open``. The window is ``width`` pixels wide.

    Nothing here sleeps for a set time: each step waits for the event that ends it (the browser's
    DevTools address in its log, the page's load event, a promise of the page), under a deadline
    that only a stuck browser reaches, so a busy machine makes the test slower, not flaky."""

    def __init__(self, width: int = WINDOW_WIDTH, timeout: float = 60):
        import websocket

        assert CHROMIUM, "chromium is not installed: apt-get install chromium"
        self.width, self.timeout = width, timeout
        self.ws, self.loaded, self.next_id, self.blocked = None, False, 0, []
        self.profile = tempfile.mkdtemp()
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
             f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             f"--window-size={width},2000", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace",
        )
        try:
            page = self.new_page()
            self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
            self.call("Page.enable")
            self.call("Fetch.enable", patterns=[{"urlPattern": "*"}])
        except BaseException:
            self.close()
            raise

    def new_page(self) -> dict:
        """A new tab, from the DevTools address the browser writes to its log once it listens
        (port 0: the browser picks a free port itself)."""
        address = queue.Queue()
        threading.Thread(target=self.read_log, args=(address,), daemon=True).start()
        try:
            browser_ws = address.get(timeout=self.timeout)
        except queue.Empty:
            raise TimeoutError(f"chromium did not open its DevTools port within {self.timeout} s") from None
        if browser_ws is None:
            raise RuntimeError(f"chromium exited (code {self.proc.wait()}) before opening its DevTools port")
        port = urlsplit(browser_ws).port
        request = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(request, timeout=self.timeout) as answer:
            return json.load(answer)

    def read_log(self, address: queue.Queue) -> None:
        """Read the browser's log to its end (a full pipe would stall the browser); its DevTools
        address goes to ``address``, then None when the log closes (the browser has exited)."""
        for line in self.proc.stderr:
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            if found:
                address.put(found.group(1))
        address.put(None)

    def send(self, method, **params) -> int:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return self.next_id

    def on_event(self, msg) -> None:
        """A paused request goes on if it stays on this machine; otherwise it fails, and is noted.
        The page's load event is noted too."""
        if msg.get("method") == "Page.loadEventFired":
            self.loaded = True
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

    def open(self, url: str) -> None:
        """Open ``url`` and wait until the page is ready to measure: its load event has fired, its
        images have loaded (or failed), MathJax (if any) has typeset the maths, the fonts are
        loaded and the page has been laid out (two animation frames)."""
        self.blocked, self.loaded = [], False
        navigated = self.call("Page.navigate", url=url)
        if navigated.get("errorText"):
            raise RuntimeError(f"{url} did not open: {navigated['errorText']}")
        deadline = time.monotonic() + self.timeout
        while not self.loaded:  # the events that come before the load event are handled on the way
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading within {self.timeout} s")
            self.on_event(json.loads(self.ws.recv()))
        self.js(SETTLED.replace("TIMEOUT_MS", str(int(self.timeout * 1000))), await_promise=True)

    def js(self, expression: str, await_promise: bool = False):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=await_promise)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            why = details.get("exception", {}).get("description") or details.get("text")
            raise RuntimeError(f"the page's JavaScript failed: {why} in {expression[:200]}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            if self.ws is not None:
                self.ws.close()
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=self.timeout)
            shutil.rmtree(self.profile, ignore_errors=True)


# Waits (as a promise) until the open page is ready to measure; fails after TIMEOUT_MS.
LAID_OUT = "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
SETTLED = """new Promise((resolve, reject) => {
  setTimeout(() => reject(new Error('images, MathJax or fonts not ready after TIMEOUT_MS ms')), TIMEOUT_MS);
  (async () => {
    const pending = Array.from(document.images).filter(i => !i.complete);
    await Promise.all(pending.map(i => new Promise(done => {
      i.addEventListener('load', done); i.addEventListener('error', done); })));
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
    await document.fonts.ready;
    await """ + LAID_OUT + """;
    return true;
  })().then(resolve, reject);
})"""


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
# Every code block a reader sees (a cell's input, a code block of the prose; not an output, not a
# folded cell), its size and its first and widest lines. "Wider than its box" is the browser's own
# measure: the block's content (scrollWidth) is wider than the part shown (clientWidth).
CODE_BLOCKS = """Array.from(document.querySelectorAll('div.highlight pre'))
  .filter(pre => !pre.closest('.cell_output') && pre.checkVisibility() && !pre.closest('details:not([open])'))
  .map(pre => {
    const lines = pre.textContent.replace(/\\n$/, '').split('\\n');
    const widest = lines.reduce((a, b) => (b.length > a.length ? b : a), '');
    return {kind: pre.closest('.cell_input') ? 'cell input' : 'prose', content: pre.scrollWidth, box: pre.clientWidth,
            first: lines[0].slice(0, 70), widest: widest};
  })"""
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
        "code": browser.js(CODE_BLOCKS),
        "bad_alt": [i for i in browser.js(IMAGES) if bad_alt(i["alt"])],
    }


def screenshots(browser, folder: Path, name: str) -> None:
    """The first and the last figure in view, for a person to look at."""
    for which, index in (("first", "0"), ("last", "imgs.length - 1")):
        browser.js(f"(() => {{ const imgs = document.querySelectorAll('.cell_output img'); "
                   f"if (imgs.length) imgs[{index}].scrollIntoView({{block: 'center'}}); }})()")
        browser.js(LAID_OUT, await_promise=True)
        browser.screenshot(folder / f"{name}.{which}.png")


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


def measure_book(browser, built: Path, shots: Path | None = None) -> dict:
    """{page: its measurements} for every page of the table of contents of the book built in
    ``built`` (its HTML folder), each opened once; screenshots of the chapters into ``shots``."""
    out = {}
    for page in chapters():
        browser.open((built / f"{page}.html").as_uri())
        inner = browser.js("window.innerWidth")
        assert inner == browser.width, f"the page is {inner} px wide in a window of {browser.width} px"
        out[page] = measure(browser)
        if shots and page in notebooks():
            screenshots(browser, shots, Path(page).name)
    return out


@pytest.fixture(scope="module")
def pages(built, browser) -> dict:
    """{page: its measurements} for every page of the table of contents, each opened once."""
    shots = Path(os.environ["BOOK_SCREENSHOTS"]) if os.environ.get("BOOK_SCREENSHOTS") else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    return measure_book(browser, built, shots)


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


def too_wide(block: dict) -> bool:
    """A code block the reader must scroll sideways (a pixel of rounding allowed)."""
    return block["content"] > block["box"] + 1


def code_problems(m) -> list:
    return [f"{b['content']} px in a box of {b['box']} px: {b['kind']} starting {b['first']!r}; "
            f"widest line ({len(b['widest'])} characters): {b['widest']!r}" for b in m["code"] if too_wide(b)]


def code_width_counts(pages: dict) -> dict:
    """{kind: (shown, too wide)}: how many code blocks of each kind ('cell input', 'prose') the
    reader sees on all the pages together, and how many of them are wider than their box."""
    counts = {}
    for m in pages.values():
        for block in m["code"]:
            shown, wide = counts.get(block["kind"], (0, 0))
            counts[block["kind"]] = (shown + 1, wide + too_wide(block))
    return counts


def describe_counts(counts: dict, width: int) -> str:
    """'at a 1280-px window, 90 of 103 cell inputs and 2 of 2 code blocks in the prose are wider than their box'"""
    names = {"cell input": "cell inputs", "prose": "code blocks in the prose"}
    parts = [f"{wide} of {shown} {names[kind]}" for kind, (shown, wide) in sorted(counts.items())]
    return f"at a {width}-px window, {' and '.join(parts) or 'no code block'} are wider than their box"


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


@needs_browser
def test_the_code_a_reader_sees_is_measured(pages):
    """The cell inputs measured on each chapter's page are the code cells its notebook shows (all
    but the folded and removed ones), counted from the notebook itself."""
    for chapter in notebooks():
        expected = sum(shows_its_code(c) for c in code_cells(chapter))
        measured = sum(b["kind"] == "cell input" for b in pages[chapter]["code"])
        assert expected > 0 and measured == expected, f"{chapter}: the notebook shows {expected} code cells; " \
            f"{measured} were measured on its page"


@needs_browser
def test_every_shown_code_block_fits_its_box(pages):
    offenders = report(pages, code_problems)
    summary = describe_counts(code_width_counts(pages), WINDOW_WIDTH)
    assert not offenders, f"code blocks wider than their box ({summary}; the reader must scroll sideways):\n" \
        + offenders


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


CODE_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<style>pre {{ overflow: auto; margin: 0; font: 14px monospace }}</style></head><body style="margin: 0; width: 300px">
<div class="cell"><div class="cell_input"><div class="highlight"><pre>wide = 1
{long}
short</pre></div></div></div>
<div class="cell"><div class="cell_input"><div class="highlight"><pre>fits = 1</pre></div></div></div>
<div class="cell"><details><summary>Show code</summary>
  <div class="cell_input"><div class="highlight"><pre>folded = 1  # {long}</pre></div></div></details></div>
<div class="cell"><details open><summary>Hide code</summary>
  <div class="cell_input"><div class="highlight"><pre>unfolded = 1</pre></div></div></details>
  <div class="cell_output"><div class="output"><div class="highlight"><pre>an output: {long}</pre></div></div></div>
</div>
<p>A command:</p><div class="highlight"><pre>make book  # {long}</pre></div>
</body></html>"""


@needs_browser
def test_the_code_check_finds_what_it_looks_for(browser, tmp_path):
    """Code blocks in a 300-px page: a wide cell input and a wide block of the prose are reported,
    with their first and widest lines; cells that fit, a folded cell and an output are not."""
    page = tmp_path / "code.html"
    long = "x = " + "1 + " * 60 + "1"
    page.write_text(CODE_PAGE.format(long=long))
    browser.open(page.as_uri())
    m = measure(browser)
    firsts = sorted(b["first"] for b in m["code"])
    assert firsts == ["fits = 1", ("make book  # " + long)[:70], "unfolded = 1", "wide = 1"], firsts
    wide = code_problems(m)
    assert len(wide) == 2, wide
    assert "cell input starting 'wide = 1'" in wide[0] and f"widest line ({len(long)} characters): '{long}'" in wide[0]
    assert "box of 300 px" in wide[0] and "prose starting 'make book" in wide[1]
    counts = code_width_counts({"code.html": m})
    assert counts == {"cell input": (3, 1), "prose": (1, 1)}
    assert describe_counts(counts, 300) == ("at a 300-px window, 1 of 3 cell inputs and 1 of 1 code blocks in the "
                                            "prose are wider than their box")


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


def main(argv=None) -> int:
    """Count the code blocks of a built book that are wider than their box, at a window width:

        python -m tests.test_browser --width 1300 _build/html
    """
    import argparse

    p = argparse.ArgumentParser(prog="python -m tests.test_browser", description=main.__doc__.split("\n\n")[0])
    p.add_argument("html", nargs="?", default="_build/html", help="the built book's HTML folder (default: %(default)s)")
    p.add_argument("--width", type=int, default=WINDOW_WIDTH, help="window width in pixels (default: %(default)s)")
    args = p.parse_args(argv)
    built = Path(args.html).resolve()
    missing = [page for page in chapters() if not (built / f"{page}.html").exists()]
    if missing:
        p.error(f"{built} holds no built page {missing[0]}: build the book first (jupyter-book build .)")
    if CHROMIUM is None:
        p.error("no chromium on this machine: apt-get install chromium")
    browser = Browser(width=args.width)
    try:
        print(describe_counts(code_width_counts(measure_book(browser, built)), args.width))
    finally:
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
