"""Fixtures for the dashboard tests: a results home from the demo corpus, a running dashboard, and chromium.

The home is the demo corpus with its real topic vectors (as `make demo` stores them) and fixed sentiment,
leaning and model tables, written in seconds; set $OPENSENTIMENT_DASHBOARD_HOME to run the same tests on a
home the pipeline made (.ci/run does, after `make demo`). Browser tests are skipped when chromium or playwright
is missing, except in CI (CI=true), where they fail instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

BASE_MODEL = "packaged:all-MiniLM-L6-v2"


def need_browser():
    """Playwright's sync API and Debian's chromium, or skip (fail with CI=true) saying which is missing."""
    from opensentiment_pipeline.dashboard.browser import CHROMIUM

    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "the playwright package is not installed (pip install -e .[test])"
    if problem is None and not Path(CHROMIUM).exists():
        problem = f"no chromium at {CHROMIUM} (apt-get install chromium)"
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(problem + " (CI=true: .ci/run installs both; a skip here would hide a broken CI)")
        pytest.skip(problem)
    return sync_playwright


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    """A results home: $OPENSENTIMENT_DASHBOARD_HOME, else the demo corpus written by homes.write_home."""
    given = os.environ.get("OPENSENTIMENT_DASHBOARD_HOME")
    if given:
        return Path(given).resolve()
    from opensentiment_pipeline.core.ingest import sources
    from opensentiment_pipeline.core.model import modeling
    from opensentiment_pipeline.core.vectors import encoding
    from opensentiment_pipeline.defs.assets.ingest import DEMO_SOURCE, SourceConfig, to_spec
    from opensentiment_pipeline.defs.assets.vectors import article_texts
    from opensentiment_pipeline_tests.dashboard import homes

    articles = sources.read_sources([to_spec(SourceConfig(**DEMO_SOURCE), seed=0)], near_dup_threshold=0.8,
                                    seed=0).articles
    vectors = encoding.encode_texts(modeling.load_encoder(BASE_MODEL, num_layers=None),
                                    modeling.load_tokenizer(BASE_MODEL), article_texts(articles, True),
                                    batch_size=64, max_length=64, device="cpu")  # 64 tokens: quick, ranks alike
    columns = ["article_id", "outlet", "published_at", "title", "text", "source"]
    return homes.write_home(tmp_path_factory.mktemp("dashboard_home"), articles[columns], vectors,
                            base_model=BASE_MODEL)


@pytest.fixture(scope="session")
def home_without_leaning(demo_home, tmp_path_factory) -> Path:
    """The demo home with outlet_leaning dropped from the results database (as before it was materialized)."""
    import duckdb

    home = tmp_path_factory.mktemp("no_leaning")
    shutil.copy(demo_home / "results.duckdb", home / "results.duckdb")
    with duckdb.connect(str(home / "results.duckdb")) as conn:
        conn.execute("DROP VIEW IF EXISTS outlet_leaning")
        conn.execute("DROP TABLE IF EXISTS outlet_leaning")
        conn.execute("DELETE FROM results_db_tables WHERE table_name = 'outlet_leaning'")
    return home


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium driven by Playwright, for the whole session."""
    sync_playwright = need_browser()
    from opensentiment_pipeline.dashboard.browser import launch_chromium

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def dashboard(demo_home, chromium, tmp_path_factory):
    """Base URL of a dashboard serving demo_home (stopped, with its process group, at the end)."""
    from opensentiment_pipeline.dashboard.browser import running_dashboard

    log = tmp_path_factory.mktemp("logs") / "dashboard.log"
    with running_dashboard(demo_home, log_path=log) as url:
        yield url


@pytest.fixture
def page(chromium, dashboard):
    """A fresh offline page (requests leaving the dashboard are blocked and recorded) with its console errors."""
    from opensentiment_pipeline.dashboard.browser import offline_page

    page = offline_page(chromium, dashboard)
    yield page
    page.close()
