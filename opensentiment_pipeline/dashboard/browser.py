"""Run the dashboard in a child process and drive it with Debian's chromium through Playwright: shared by the
browser tests, the screenshot command and the speed benchmark.

Playwright's own browser download cannot be used offline, so chromium comes from Debian (`apt-get install
chromium`) and is launched by path. The server runs in its own process group, which `running_dashboard` kills
as a whole on exit, so no server outlives a test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = os.environ.get("OPENSENTIMENT_CHROMIUM", "/usr/bin/chromium")
# No sandbox: CI runs as root, where chromium refuses its sandbox. The rest keep it from phoning home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
READY_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_dashboard(home: str | os.PathLike, *, port: int | None = None, log_path: str | os.PathLike | None = None,
                      env: dict | None = None, started: list | None = None,
                      cwd: str | os.PathLike | None = None) -> Iterator[str]:
    """Start `opensentiment dashboard` over `home` on 127.0.0.1 and yield its base URL; stop it on exit.
    `started`, when given, receives the server's Popen (the benchmark reads its memory)."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "opensentiment_pipeline.cli", "dashboard", "--home", str(home), "--port", str(port),
           "--dagster-url", "http://127.0.0.1:3000", "--mlflow-url", "http://127.0.0.1:5000"]
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    child_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=child_env, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    if started is not None:
        started.append(proc)
    try:
        _wait_ready(proc, url, log_path)
        yield url
    finally:
        _stop(proc)
        if log_path:
            log.close()


def _wait_ready(proc: subprocess.Popen, url: str, log_path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = Path(log_path).read_text(errors="replace")[-3000:] if log_path else ""
            raise RuntimeError(f"the dashboard exited with {proc.returncode} before serving {url}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{url}/_dash-layout", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:  # not listening yet
            pass
        time.sleep(0.3)
    raise TimeoutError(f"the dashboard did not answer at {url} within {READY_TIMEOUT_S:.0f} s")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group, SIGKILL it after 5 s."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def launch_chromium(playwright):
    """Debian's chromium through Playwright (headless)."""
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"no chromium at {CHROMIUM}: `apt-get install chromium` (Debian), or point "
                                "$OPENSENTIMENT_CHROMIUM at a Chromium binary")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def offline_page(browser, base_url: str):
    """A page that records console errors and every request that leaves `base_url`, and blocks those requests,
    so a CDN dependency shows up as a failure instead of a slow load."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.console_errors = []
    page.external_requests = []
    page.on("console", lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: page.console_errors.append(str(err)))

    def route(route):
        if route.request.url.startswith(base_url) or route.request.url.startswith("data:"):
            return route.continue_()
        page.external_requests.append(route.request.url)
        return route.abort()

    page.route("**/*", route)
    return page


def wait_rendered(page, timeout_ms: float = 60_000) -> None:
    """Wait until the page's content is drawn: no Dash callback pending and no loading spinner."""
    page.wait_for_selector("#page > *", timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('._dash-loading-callback, [data-dash-is-loading=\"true\"]')",
        timeout=timeout_ms)
    page.wait_for_load_state("networkidle", timeout=timeout_ms)
