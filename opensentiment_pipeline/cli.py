"""The `opensentiment` command: search the article index, compare MLflow runs side by side, serve the dashboard.

    opensentiment search "central bank raises rates" --k 5 --outlet "daily ledger" --sentiment negative
    opensentiment runs --last 5 --asset sentiment_adapter
    opensentiment dashboard --port 8050
    dagster asset materialize --select '*' --partition-range "$(opensentiment days)"

Heavy libraries (pandas, faiss, torch, transformers) are imported inside the functions that need them, so
`opensentiment --help` answers at once.
"""

import argparse
import json
import os
import sys
from pathlib import Path

NO_INDEX_HINT = "run `make demo` or materialize article_index first"
SENTIMENTS = ("negative", "neutral", "positive")  # schema.SENTIMENT_LABELS, spelled out to keep --help light
TEXT_WIDTH = 100


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opensentiment", description="News sentiment and bias pipeline tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    find = commands.add_parser(
        "search", help="find the articles most similar to a query text",
        description="Embed QUERY with the encoder the index was built with and print the most similar articles "
                    "(cosine similarity), with outlet, date and predicted sentiment. Filters apply before the "
                    "top k is taken, so k results come back whenever k articles match.")
    find.add_argument("query", help="text to search for: a phrase, a headline or a paragraph")
    find.add_argument("--k", type=_positive_int, default=10, help="number of results (default: 10)")
    find.add_argument("--outlet", help="only articles of this outlet (case and spacing are ignored)")
    find.add_argument("--sentiment", choices=SENTIMENTS, help="only articles with this predicted sentiment")
    find.add_argument("--home", help="project home holding index/ "
                      "(default: $OPENSENTIMENT_HOME, else ./.opensentiment)")
    find.add_argument("--index", help="the index folder itself (overrides --home)")
    find.add_argument("--json", action="store_true", help="print the results as a JSON array instead of a table")
    runs = commands.add_parser(
        "runs", help="print the last N MLflow runs side by side",
        description="One column per run, newest first: asset, status, start, the params that differ between the "
                    "shown runs, and every metric. The MLflow UI's Compare view shows the same runs with charts.")
    runs.add_argument("--last", type=_positive_int, default=5, help="number of runs (default: 5)")
    runs.add_argument("--asset", help="only runs of this asset, e.g. sentiment_adapter, evaluation_report, sweep_trial")
    runs.add_argument("--experiment", default="opensentiment", help="MLflow experiment (default: opensentiment)")
    runs.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else "
                      "sqlite:///<home>/mlflow.db)")
    runs.add_argument("--home", help="project home (default: $OPENSENTIMENT_HOME, else ./.opensentiment)")
    days = commands.add_parser(
        "days", help="print the range of day partitions, for dagster's --partition-range",
        description="Print FIRST...LAST: the archive day ($OPENSENTIMENT_FIRST_DAY) and today (UTC), or the "
                    "last N days with --last. raw_articles and article_embeddings are stored per publish day.")
    days.add_argument("--last", type=_positive_int, help="only the last N days, ending today")
    days.add_argument("--until", metavar="YYYY-MM-DD", help="end the range on this day instead of today (e.g. the "
                      "demo corpus's last publish day, so a demo run covers the same days whatever the date)")
    board = commands.add_parser(
        "dashboard", help="serve the results dashboard (outlets, stories, over time, search, model)",
        description="Serve the dashboard over the results database (<home>/results.duckdb, made by the results_db "
                    "asset) and the search index, until Ctrl-C. It listens on 127.0.0.1 only unless --host says "
                    "otherwise.")
    board.add_argument("--port", type=_positive_int, default=8050, help="port (default: 8050)")
    board.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default: 127.0.0.1; 0.0.0.0 serves every network interface)")
    board.add_argument("--home", help="project home (default: $OPENSENTIMENT_HOME, else ./.opensentiment)")
    board.add_argument("--dagster-url", help="Dagster UI the pages link to (default: $DAGSTER_UI_URL, else "
                       "http://127.0.0.1:3000)")
    board.add_argument("--mlflow-url", help="MLflow UI the pages link to (default: $MLFLOW_UI_URL, else "
                       "http://127.0.0.1:5000)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 error or no match, 2 bad usage)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help and on usage errors; report the code instead
        return int(exit_.code or 0)
    try:
        return {"search": run_search, "runs": run_runs, "days": run_days,
                "dashboard": run_dashboard}[args.command](args)
    except CliError as err:
        print(f"opensentiment: error: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Piped into `head`, which closed early. Point stdout at devnull so the interpreter's final flush does
        # not raise again (the recipe in the Python docs, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def run_days(args: argparse.Namespace) -> int:
    """Print the partition range `FIRST...LAST`."""
    from opensentiment_pipeline.defs.partitions import DAILY, whole_range

    first, last = whole_range()
    keys = DAILY.get_partition_keys()
    if args.until:
        if args.until not in keys:
            raise CliError(f"--until {args.until}: not a day partition; the partitions run {first}...{last} "
                           "(YYYY-MM-DD)")
        keys = keys[: keys.index(args.until) + 1]
        last = args.until
    if args.last:
        first = keys[max(0, len(keys) - args.last)]
    print(f"{first}...{last}")
    return 0


def run_dashboard(args: argparse.Namespace) -> int:
    """Serve the dashboard until interrupted."""
    import logging

    from opensentiment_pipeline.dashboard.app import serve

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Not resolved: the dashboard shows the home as given (e.g. .opensentiment/results.duckdb), links and all.
    home = Path(args.home or os.environ.get("OPENSENTIMENT_HOME", ".opensentiment")).expanduser().absolute()
    print(f"opensentiment dashboard: http://{args.host}:{args.port}  (results in {home}; Ctrl-C stops it)",
          file=sys.stderr)
    serve(home, host=args.host, port=args.port, dagster_url=args.dagster_url, mlflow_url=args.mlflow_url)
    return 0


def run_runs(args: argparse.Namespace) -> int:
    """Print `compare_runs` as a table."""
    from opensentiment_pipeline.runs import compare_runs

    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{_home(args.home)}/mlflow.db"
    try:
        table = compare_runs(uri, experiment=args.experiment, last=args.last, asset=args.asset)
    except ValueError as err:
        raise CliError(str(err)) from None
    print(table.fillna("").to_string())
    return 0


def run_search(args: argparse.Namespace) -> int:
    """Load the index folder, filter, embed the query, search, print."""
    import pandas as pd

    from opensentiment_pipeline.core.vectors import search

    folder = Path(args.index) if args.index else _home(args.home) / "index"
    if not (folder / search.MANIFEST_FILE).exists():
        raise CliError(f"no search index at {folder}: {NO_INDEX_HINT} (or point --home / --index at one)")
    manifest = json.loads((folder / search.MANIFEST_FILE).read_text())
    index = search.load_index(folder)
    articles = pd.read_parquet(folder / search.ARTICLES_FILE)
    allowed = _allowed_ids(articles, outlet=args.outlet, sentiment=args.sentiment)
    hits = search.search(index, embed_query(manifest, args.query), args.k, allowed_ids=allowed)
    if hits.empty:
        print(f"opensentiment: no article matches {_describe_filters(args)}", file=sys.stderr)
        return 1
    rows = hits.merge(articles, on="article_id", how="left")
    print(_as_json(rows) if args.json else _as_table(rows))
    return 0


def embed_query(manifest: dict, text: str):
    """`(dimensions,)` vector of `text` from the encoder named in the index manifest (`search.query_encoder`)."""
    from opensentiment_pipeline.core.vectors import search

    try:
        return search.query_encoder(manifest).embed(text)
    except ValueError as err:
        raise CliError(str(err)) from None


def _allowed_ids(articles, *, outlet: str | None, sentiment: str | None) -> list[str] | None:
    import difflib

    if outlet is None and sentiment is None:
        return None
    keep = articles["article_id"].notna()
    if outlet is not None:
        wanted, known = _normalise(outlet), articles["outlet"].dropna().astype(str)
        matches = known.map(_normalise) == wanted
        if not matches.any():
            close = difflib.get_close_matches(wanted, sorted(set(known.map(_normalise))), n=3, cutoff=0.5)
            hint = (f"; did you mean {', '.join(repr(c) for c in close)}?" if close
                    else f"; outlets include {sorted(set(known))[:10]}")
            raise CliError(f"no outlet {outlet!r} in the index{hint}")
        keep &= articles["outlet"].astype(str).map(_normalise) == wanted
    if sentiment is not None:
        keep &= articles["sentiment"] == sentiment
    return articles.loc[keep, "article_id"].astype(str).tolist()


def _as_table(rows) -> str:
    lines = [f"{'rank':>4}  {'sim':>5}  {'outlet':<20}  {'date':<10}  {'sentiment':<9}  text"]
    for row in rows.itertuples():
        # Demo and sentence-level sources repeat one title over many rows; the snippet tells them apart.
        title = row.title.strip() if isinstance(row.title, str) else ""
        text = f"{title} — {row.snippet}" if title else row.snippet
        lines.append(f"{row.rank:>4}  {row.similarity:>5.3f}  {_cut(row.outlet, 20):<20}  {_date(row.published_at):<10}"
                     f"  {_cut(row.sentiment, 9):<9}  {_cut(text, TEXT_WIDTH)}")
    return "\n".join(lines)


def _as_json(rows) -> str:
    records = [{"rank": int(r.rank), "similarity": round(float(r.similarity), 4), "article_id": r.article_id,
                "outlet": r.outlet, "published_at": _date(r.published_at) or None, "source": r.source,
                "sentiment": r.sentiment, "sentiment_confidence": round(float(r.sentiment_confidence), 4),
                "title": r.title, "snippet": r.snippet} for r in rows.itertuples()]
    return json.dumps(records, indent=2, ensure_ascii=False)


def _home(home: str | None) -> Path:
    # The same rule as defs.resources.project_home, without importing dagster for a search.
    return Path(home or os.environ.get("OPENSENTIMENT_HOME", ".opensentiment")).expanduser().resolve()


def _normalise(name: str) -> str:
    from opensentiment_pipeline.core.ingest.articles import normalise_outlet  # the one outlet normaliser

    return normalise_outlet(name)


def _cut(value: object, width: int) -> str:
    text = " ".join(str(value).split()) if isinstance(value, str) else "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def _date(value: object) -> str:
    return value.strftime("%Y-%m-%d") if hasattr(value, "strftime") and value == value else ""


def _describe_filters(args: argparse.Namespace) -> str:
    parts = [f"--outlet {args.outlet!r}" if args.outlet else "",
             f"--sentiment {args.sentiment}" if args.sentiment else ""]
    return " ".join(p for p in parts if p) or "the query"


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {number}")
    return number


if __name__ == "__main__":
    sys.exit(main())
