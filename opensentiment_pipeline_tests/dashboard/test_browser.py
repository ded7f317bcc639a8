"""The dashboard in Debian's chromium: every page renders with no console error and no request leaving the
server, a search finds the article it quotes, the date filter changes the outlet table, and a missing asset
shows its hint."""

from __future__ import annotations

import pandas as pd
import pytest

from opensentiment_pipeline.core.vectors import search
from opensentiment_pipeline.dashboard.browser import offline_page, running_dashboard, wait_rendered
from opensentiment_pipeline.dashboard.store import ResultsStore, materialize_command

pytestmark = pytest.mark.browser
PAGES = ["/", "/outlets", "/stories", "/over-time", "/search", "/model"]


def _open(page, url: str):
    page.goto(url)
    wait_rendered(page)
    return page


@pytest.mark.parametrize("path", PAGES)
def test_page_renders_offline_without_console_errors(page, dashboard, path):
    _open(page, dashboard + path)
    text = page.inner_text("#page")
    assert "Traceback" not in text and "Error" not in text.split("\n")[0]
    assert page.console_errors == []
    assert page.external_requests == []
    assert page.locator("#page h2, #page .notice.missing").count() >= 1


def test_search_returns_the_quoted_article_first(page, dashboard, demo_home):
    articles = pd.read_parquet(demo_home / "index" / search.ARTICLES_FILE)
    unique = articles[~articles["snippet"].duplicated(keep=False)]
    target = unique.sort_values("article_id").iloc[0]
    _open(page, dashboard + "/search")
    page.fill("#search-query", target["snippet"])
    page.click("#search-go")
    page.wait_for_selector("#search-hits li", timeout=60_000)
    first = page.locator("#search-hits li").first
    assert first.get_attribute("data-article") == target["article_id"]
    page.locator(".more-like").first.click()
    page.wait_for_selector("text=More like", timeout=30_000)
    # The heading can show before the new hits replace the old list: wait for the list to change.
    page.wait_for_function("id => { const li = document.querySelector('#search-hits li');"
                           " return li && li.getAttribute('data-article') !== id; }",
                           arg=target["article_id"], timeout=30_000)
    assert target["article_id"] not in [li.get_attribute("data-article")
                                        for li in page.locator("#search-hits li").all()]
    assert page.console_errors == []


def test_empty_query_says_what_to_do(page, dashboard):
    _open(page, dashboard + "/search")
    page.click("#search-go")
    page.wait_for_selector("#search-results .notice", timeout=30_000)
    assert "type a query first" in page.inner_text("#search-results")


def test_date_filter_changes_the_outlet_table(page, dashboard, demo_home):
    store = ResultsStore.at_home(demo_home)
    last = str(store.query("SELECT max(published_at)::DATE::VARCHAR AS d FROM raw_articles").iloc[0]["d"])
    expected = int(store.query("SELECT count(*) AS n FROM raw_articles JOIN article_embeddings USING (article_id) "
                               "WHERE published_at::DATE = ?::DATE", [last]).iloc[0]["n"])
    _open(page, dashboard + "/outlets")
    before = page.inner_text("#outlets-count")
    page.fill("#outlets-dates", last)
    page.press("#outlets-dates", "Enter")
    page.wait_for_function("b => document.querySelector('#outlets-count') && "
                           "document.querySelector('#outlets-count').innerText !== b", arg=before, timeout=30_000)
    assert page.inner_text("#outlets-count").startswith(f"{expected} articles")
    assert before != page.inner_text("#outlets-count")
    assert page.console_errors == []


def test_missing_asset_shows_which_and_the_command(chromium, home_without_leaning, tmp_path):
    with running_dashboard(home_without_leaning, log_path=tmp_path / "dashboard.log") as url:
        page = offline_page(chromium, url)
        _open(page, url + "/outlets")
        hint = page.locator("#outlets-axis .notice.missing")
        assert hint.get_attribute("data-asset") == "outlet_leaning"
        assert materialize_command("outlet_leaning") in hint.inner_text()
        _open(page, url + "/search")  # the copy has no index folder
        assert page.locator(".notice.missing").get_attribute("data-asset") == "article_index"
        assert page.console_errors == []
        page.close()


def test_stories_and_over_time_draw_their_tables(page, dashboard, demo_home):
    store = ResultsStore.at_home(demo_home)
    if not (store.has("stories") and store.has("sentiment_trends")):
        pytest.skip("this home has no stories or sentiment_trends table (their pages show a hint instead)")
    _open(page, dashboard + "/stories")
    page.wait_for_selector("#stories-outlet-table", timeout=30_000)
    assert page.locator("#stories-biggest tbody tr").count() >= 1
    _open(page, dashboard + "/over-time")
    page.wait_for_selector("#trends-graph", timeout=30_000)
    assert page.console_errors == []
