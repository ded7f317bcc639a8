"""Screenshot every dashboard page into a folder (docs/screenshots for the README), in Debian's chromium.

    python -m opensentiment_pipeline.dashboard.screenshots --home .opensentiment --out docs/screenshots

Needs the `playwright` package (the test extra) and /usr/bin/chromium. The Search page is shot with a query typed in.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from opensentiment_pipeline.dashboard.browser import launch_chromium, offline_page, running_dashboard, wait_rendered

PAGES = {"overview": "/", "outlets": "/outlets", "stories": "/stories", "over_time": "/over-time",
         "search": "/search", "model": "/model"}
SEARCH_QUERY = "central bank interest rates"


def take_screenshots(home: Path, out: Path, *, query: str = SEARCH_QUERY) -> list[Path]:
    """One PNG per page of the dashboard over `home`, written into `out`; returns their paths."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    # The server runs beside a link named .opensentiment, so the pages show that path, not where the home lies.
    stage = Path(tempfile.mkdtemp(prefix="screenshots-"))
    (stage / ".opensentiment").symlink_to(Path(home).absolute(), target_is_directory=True)
    with running_dashboard(".opensentiment", cwd=stage, log_path=out.parent / ".screenshots-dashboard.log") as url, \
            sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = offline_page(browser, url)
        for name, path in PAGES.items():
            page.goto(url + path)
            wait_rendered(page)
            if name == "search" and page.locator("#search-query").count():
                page.fill("#search-query", query)
                page.click("#search-go")
                page.wait_for_selector("#search-results > *", timeout=120_000)
                wait_rendered(page)
            target = out / f"{name}.png"
            page.screenshot(path=str(target), full_page=True)
            written.append(target)
        errors, external = list(page.console_errors), list(page.external_requests)
        browser.close()
    (out.parent / ".screenshots-dashboard.log").unlink(missing_ok=True)
    shutil.rmtree(stage)
    if errors or external:
        raise RuntimeError(f"the pages logged console errors {errors[:5]} or requested {external[:5]} outside the "
                           "dashboard; screenshots were written, but fix that first")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=os.environ.get("OPENSENTIMENT_HOME", ".opensentiment"),
                        help="project home with results.duckdb (default: $OPENSENTIMENT_HOME, else ./.opensentiment)")
    parser.add_argument("--out", default="docs/screenshots", help="folder for the PNGs (default: docs/screenshots)")
    parser.add_argument("--query", default=SEARCH_QUERY, help="text typed into the Search page")
    args = parser.parse_args(argv)
    for path in take_screenshots(Path(args.home).resolve(), Path(args.out), query=args.query):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
