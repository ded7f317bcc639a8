"""Dashboard speed: each page's first render in chromium, and the dashboard process's memory, at three sizes.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/dashboard_speed.py --demo-home .opensentiment \
        --cache /tmp/dashboard_bench [--sizes demo abp 100k]

- demo: the results `make demo` stored (--demo-home);
- abp: synthetic results the size of the ABP text sample (8,928 articles, 174 outlets, 30 days);
- 100k: synthetic results with 100,000 articles, 200 outlets, 365 days.
The synthetic homes (random 384-d topic vectors, written once into --cache) hold the same tables as a real one.
"First render" is the time from navigation until the page's content is drawn and no Dash callback is pending,
on a fresh server (nothing cached), one page after another. The Search page is timed again for the first query
(which loads the encoder) and a second one. Memory is the server's resident set size before the first search
and after all of that (with the encoder loaded).
Goals: <= 2 s per page on the demo, <= 3 s at ABP size, <= 5 s at 100k.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

GOALS_S = {"demo": 2.0, "abp": 3.0, "100k": 5.0}
SYNTHETIC = {"abp": {"n": 8_928, "n_outlets": 174, "n_days": 30}, "100k": {"n": 100_000, "n_outlets": 200,
                                                                            "n_days": 365}}
PAGES = {"overview": "/", "outlets": "/outlets", "stories": "/stories", "over_time": "/over-time",
         "search": "/search", "model": "/model"}
BASE_MODEL = "packaged:all-MiniLM-L6-v2"


def synthetic_home(cache: Path, size: str) -> Path:
    from opensentiment_pipeline_tests.dashboard import homes

    home = cache / size
    if (home / "results.duckdb").exists():
        return home
    spec = SYNTHETIC[size]
    articles = homes.synthetic_articles(spec["n"], n_outlets=spec["n_outlets"], n_days=spec["n_days"], seed=0)
    vectors = np.random.default_rng(0).standard_normal((spec["n"], 384)).astype(np.float32)
    homes.write_home(home, articles, vectors, base_model=BASE_MODEL, store_vectors=False)
    return home


def measure(home: Path) -> dict:
    import psutil
    from playwright.sync_api import sync_playwright

    from opensentiment_pipeline.dashboard.browser import launch_chromium, offline_page, running_dashboard, wait_rendered

    started: list = []
    timings: dict[str, float] = {}
    with running_dashboard(home, started=started) as url, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for name, path in PAGES.items():
            page = offline_page(browser, url)
            start = time.perf_counter()
            page.goto(url + path)
            wait_rendered(page, timeout_ms=300_000)
            timings[name] = time.perf_counter() - start
            print(f"  {home.name} {name}: {timings[name]:.2f} s", flush=True)
            if name == "search" and page.locator("#search-query").count():
                rss_before_search = _rss(psutil.Process(started[0].pid))
                for label, query in (("search_first_query", "central bank raises rates"),
                                     ("search_second_query", "harvest fair crowds")):
                    page.fill("#search-query", query)
                    start = time.perf_counter()
                    page.click("#search-go")
                    page.wait_for_selector("#search-results h3, #search-results .notice", timeout=300_000)
                    timings[label] = time.perf_counter() - start
            if page.console_errors or page.external_requests:
                raise RuntimeError(f"{name}: console errors {page.console_errors[:3]}, "
                                   f"external requests {page.external_requests[:3]}")
            page.close()
        rss = _rss(psutil.Process(started[0].pid))
        browser.close()
    return {"seconds": {k: round(v, 2) for k, v in timings.items()},
            "server_rss_mib_before_search": round(rss_before_search / 2**20, 1),
            "server_rss_mib": round(rss / 2**20, 1)}


def _rss(process) -> int:
    """Resident bytes of the server process and its children."""
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-home", default=".opensentiment", help="home holding the demo's results.duckdb")
    parser.add_argument("--cache", required=True, help="folder for the synthetic homes (kept between runs)")
    parser.add_argument("--sizes", nargs="+", default=["demo", "abp", "100k"], choices=["demo", "abp", "100k"])
    args = parser.parse_args()
    results = {}
    for size in args.sizes:
        home = Path(args.demo_home).resolve() if size == "demo" else synthetic_home(Path(args.cache), size)
        results[size] = measure(home)
        pages = {k: v for k, v in results[size]["seconds"].items() if k in PAGES}
        worst = max(pages, key=pages.get)
        verdict = "met" if pages[worst] <= GOALS_S[size] else "NOT met"
        print(f"{size}: slowest first render {worst} {pages[worst]:.2f} s (goal {GOALS_S[size]} s: {verdict}); "
              f"server RSS {results[size]['server_rss_mib_before_search']} MiB before a search, "
              f"{results[size]['server_rss_mib']} MiB after (encoder loaded)")
        print("  " + ", ".join(f"{k} {v:.2f} s" for k, v in results[size]["seconds"].items()))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
