"""The report in a real browser: headless Chromium, driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: no port, no extra package). The page must load without a single
network request or console problem, sort its tables, show the key number, and look like a report
(a screenshot is written next to the test's files for a person to look at).

Without Chromium the test skips locally and fails under CI (``CI=true``), where .ci/run installs it.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlbench.results import leaderboard
from mlbench.cli import main
from mlbench.results.leaderboard import GLOBAL_LABEL

pytestmark = pytest.mark.browser
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def _browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    message = f"no headless browser found (looked for {', '.join(BROWSERS)}); `apt-get install chromium`"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: .ci/run installs it)")
    pytest.skip(message)


class Chromium:
    """One headless Chromium speaking the DevTools protocol over fds 3 (commands in) and 4 (replies out)."""

    def __init__(self, binary: str, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="mlbench-chromium-")
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()

        def wire_pipes() -> None:
            os.dup2(commands_read, 3)
            os.dup2(replies_write, 4)

        self.process = subprocess.Popen(
            [binary, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-default-apps", "--hide-scrollbars", f"--user-data-dir={self.profile}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=wire_pipes, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._last_id = 0
        self.events: list[dict] = []

    def _message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._replies], [], [], max(left, 0))
            if not ready:
                raise TimeoutError(f"chromium did not answer within {self.timeout} s")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._last_id += 1
        message = {"id": self._last_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._last_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._message(deadline))

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self.process.wait(timeout=10)
        except (RuntimeError, TimeoutError, OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)
        shutil.rmtree(self.profile, ignore_errors=True)


def render(binary: str, page: Path, probes: dict[str, str] | None = None, width: int = 1280, height: int = 2000):
    """Load ``page``; return its DOM, a screenshot (PNG bytes), every request's URL, every console
    problem (errors, warnings, uncaught exceptions, failed or blocked loads) and each probe's value."""
    browser = Chromium(binary)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                            "mobile": False}, session=session)
        browser.events.clear()
        browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")

        def evaluate(expression: str):
            result = browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                                  session=session)
            if "exceptionDetails" in result:
                raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
            return result["result"].get("value")

        values = {name: evaluate(expression) for name, expression in (probes or {}).items()}
        dom = evaluate("document.documentElement.outerHTML")
        shot = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"])
    finally:
        browser.close()
    requests = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    problems = []
    for event in browser.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            problems.append(details.get("exception", {}).get("description") or details.get("text"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
            problems.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
            problems.append(params["entry"].get("text", ""))
        elif method == "Network.loadingFailed":
            problems.append(f"load failed: {params.get('errorText')} {params.get('blockedReason', '')}".strip())
    return dom, shot, requests, problems, values


def _offline(url: str, page: Path) -> bool:
    return url.startswith("data:") or url == page.resolve().as_uri()


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    """The report of a tiny demo run with an explain gallery (40 patients, resnet10t, 2 epochs, 32 px)."""
    from mlbench.training.runner import RunOptions, run

    root = tmp_path_factory.mktemp("browser")
    result = run(RunOptions(benchmark="padchest-specific", out=root / "run", demo=True, demo_dir=root / "demo",
                            demo_options={"n_patients": 40, "image_size": 96, "n_corrupt": 0}, image_size=32,
                            backbones=("resnet10t",), max_epochs=2, workers=1, progress=False, n_boot=20))
    explained = CliRunner().invoke(main, ["explain", str(result.run_dir), "--split", "test", "--limit", "2",
                                          "--labels", "normal", "--out", str(result.run_dir / "explain"),
                                          "--boxes", str(root / "demo" / "findings.csv"),
                                          "--lungs", str(root / "demo" / "lungs.csv"), "--device", "cpu"],
                                   catch_exceptions=False)
    assert explained.exit_code == 0, explained.output
    out = root / "report.html"
    made = CliRunner().invoke(main, ["report", str(result.run_dir), "--against", "published", "--out", str(out)],
                              catch_exceptions=False)
    assert made.exit_code == 0, made.output
    return result.run_dir, out


def test_the_harness_catches_requests_and_errors(tmp_path):
    """The checks below can fail: a page that fetches and throws is caught (port 9 is one Chromium refuses
    to connect to, so nothing leaves the machine)."""
    binary = _browser()
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">'
                    "<script>missingFunction();</script></body></html>")
    _, shot, requests, problems, _ = render(binary, page)
    assert "http://127.0.0.1:9/x.png" in requests
    assert any("missingFunction" in p for p in problems)
    assert shot.startswith(b"\x89PNG")


def test_report_renders_offline_without_console_problems(demo_report):
    binary = _browser()
    run_dir, page = demo_report
    probes = {
        # sort the global table by AUC, descending (two clicks), and read the entries' order back
        "sorted": "(function () { var th = document.querySelectorAll('#global-table thead th')[2];"
                  " th.click(); th.click();"
                  " return Array.prototype.map.call(document.querySelectorAll('#global-table tbody tr'),"
                  " function (r) { return r.cells[2].getAttribute('data-value'); }); })()",
        "images_loaded": "Array.prototype.every.call(document.images, function (i) {"
                         " return i.complete && i.naturalWidth > 0; }) && document.images.length",
        "forest_height": "document.querySelector('#forest-ctp svg').getBoundingClientRect().height",
        "global_top": "document.getElementById('global-table').getBoundingClientRect().top",
        "forest_top": "document.querySelector('#forest-ctp svg').getBoundingClientRect().top",
    }
    dom, shot, requests, problems, values = render(binary, page, probes)
    (page.parent / "report-screenshot.png").write_bytes(shot)

    assert problems == []
    assert [u[:40] for u in requests if not _offline(u, page)] == []
    assert sum(u.startswith("data:image/png") for u in requests) >= 2  # the gallery's panels were loaded
    assert values["images_loaded"] >= 2

    board = leaderboard.read(run_dir / "leaderboard.parquet").to_pandas()
    ctp_rows = board[(board["entry"] == "ctp") & (board["metric"] == "auc") & (board["label"] == GLOBAL_LABEL)]
    ctp = float(ctp_rows["value"].iloc[0])
    assert f"ctp macro ROC AUC <b data-value=\"{ctp!r}\">{ctp:.4f}</b>" in dom
    assert "SYNTHETIC DATA" in dom

    shown = [float(v) for v in values["sorted"] if v]
    assert shown == sorted(shown, reverse=True) and len(shown) == 4

    # the global table and the per-label plot are both on the first screen (1280 x 2000)
    assert 0 < values["global_top"] < values["forest_top"] < 2000 - min(values["forest_height"], 600)
    assert shot.startswith(b"\x89PNG") and len(shot) > 50_000
    width, height = int.from_bytes(shot[16:20], "big"), int.from_bytes(shot[20:24], "big")
    assert (width, height) == (1280, 2000)
