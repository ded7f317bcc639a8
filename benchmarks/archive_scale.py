"""A year of stored news: a full rebuild vs one night of 10,000 new articles, at 10k, 100k and 1M stored articles.

For each `--sizes` N, a synthetic archive of N articles over `--days` publish days (365 day partitions) and
`--outlets` outlets is written straight into the four day-partitioned assets' folders (synthetic_archive.py:
real Article-Bias-Prediction leads resampled, topic vectors drawn around the real vectors of their articles, which
the packaged MiniLM base encoder embeds once into `--cache`). No model runs for the archive. Then, on one Dagster
instance per size, each in its own process so one phase's memory does not count in the next:

- **rebuild**: every asset the nightly job refreshes downstream of the embeddings (article_index, outlet_clusters,
  outlet_leaning, entity_sentiment, sentiment_trends, stories, outlet_agreement, results_db), one run, from empty
  state folders, with `rebuild: true` where an asset has it;
- **night**: `reembedding_job` for the next day, as the schedule launches it, ingesting `--new` articles from a
  Parquet file. Its model steps (article_embeddings / article_sentences, entity_mentions) are stubbed: they
  write the new day's vectors, sentences and mentions from the same generator, because their cost is the
  model's. The real embedding is timed apart (**embed**: `--embed-n` articles through the pipeline's embedding
  path, per 10,000);
- **drift**: a rebuild over the archive and the new day, compared with what the night left: the top 10 of 100
  stored vectors in the night's index vs the rebuilt one, the new day's map clusters vs a refit's (refit clusters
  mapped to the night's by majority overlap), the outlet table (outlet_leaning, recomputed from every day with
  the fit the night kept) max abs difference.

Per step: wall time (Dagster step stats) and peak RSS (the process's RSS sampled every 50 ms, its maximum within
the step's window). The stored days each step read come from the IO manager's read log.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 nice -n 10 .venv/bin/python benchmarks/archive_scale.py \\
        --sizes 10000 100000 1000000 --out archive_scale.json
"""

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from archive_report import NEW_DAY, machine, report_growth, report_size
REBUILD_ASSETS = ("article_index", "outlet_clusters", "outlet_leaning", "entity_sentiment", "sentiment_trends",
                  "stories", "outlet_agreement", "results_db")
STATE_FOLDER_FIELDS = ("state_dir", "index_dir")  # Config fields naming an incremental asset's state folder
# Rebuilt with the fit the night kept (`rebuild: true` recomputes its sums from every day): the probe is refitted
# on a schedule, so "from scratch" for the outlet table means the same fit over every stored day.
KEEP_FIT_ON_DRIFT = ("outlet_leaning",)
PHASES = ("archive", "rebuild", "night", "drift", "embed")
DATA = "../shared/data/article_bias_prediction/abp_articles_text_sample_cap300_per_source.parquet"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help="stored articles in the archive, one measurement each")
    parser.add_argument("--new", type=int, default=10_000, help="articles the night ingests (one new day)")
    parser.add_argument("--days", type=int, default=365, help="publish days the archive spreads over")
    parser.add_argument("--outlets", type=int, default=300)
    parser.add_argument("--real", type=int, default=3000, help="real ABP articles resampled (embedded once)")
    parser.add_argument("--embed-n", type=int, default=200, help="articles embedded for real to time the model "
                        "apart (0 = skip)")
    parser.add_argument("--no-drift", action="store_true", help="skip the second rebuild and the drift checks")
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--cache", default="/work/cache/archive_scale", help="real vectors and the tiny adapter")
    parser.add_argument("--work", default=None, help="folder for the archives (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep each size's archive after measuring it")
    parser.add_argument("--resume", action="store_true", help="with --work and --keep: skip the phases whose "
                        "figures are already in --work (after a failed phase)")
    parser.add_argument("--out", default="archive_scale.json", help="JSON of every figure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)  # one phase of one size (a child)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.phase:
        return run_phase(args)
    import tempfile

    work = Path(args.work or tempfile.mkdtemp(prefix="archive_scale_"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    figures = {"machine": machine(), "date": dt.date.today().isoformat(), "new_articles": args.new,
               "days": args.days, "outlets": args.outlets, "sizes": {}}
    for size in args.sizes:
        phases = [p for p in PHASES if not (p == "drift" and args.no_drift) and not (p == "embed" and not args.embed_n)]
        result = {}
        for phase in phases:
            if phase == "embed" and size != args.sizes[0]:
                continue  # the model's cost does not depend on the archive
            done = work / str(size) / f"{phase}.json"
            if args.resume and done.exists():
                result[phase] = json.loads(done.read_text())
                continue
            start = time.perf_counter()
            command = [sys.executable, __file__, *sys.argv[1:], "--phase", phase, "--size", str(size),
                       "--work", str(work)]
            subprocess.run(command, check=True, env=env)
            result[phase] = json.loads((work / str(size) / f"{phase}.json").read_text())
            result[phase]["process_seconds"] = round(time.perf_counter() - start, 1)
        figures["sizes"][str(size)] = result
        report_size(size, result)
        if not args.keep:
            shutil.rmtree(work / str(size), ignore_errors=True)
    report_growth(figures)
    Path(args.out).write_text(json.dumps(figures, indent=1))
    print(f"\nfigures: {args.out}")
    return 0


# ---- one phase of one size, in its own process ----------------------------------------------------------------

def run_phase(args: argparse.Namespace) -> int:
    new_day = dt.date.fromisoformat(NEW_DAY)
    first_day = new_day - dt.timedelta(days=args.days)
    # The partitions definition is built at import: its days are the archive's and the night's.
    os.environ["OPENSENTIMENT_FIRST_DAY"] = first_day.isoformat()
    os.environ["OPENSENTIMENT_LAST_DAY"] = NEW_DAY
    import torch

    torch.set_num_threads(1)
    home = Path(args.work) / str(args.size)
    home.mkdir(parents=True, exist_ok=True)
    days = [(first_day + dt.timedelta(days=i)).isoformat() for i in range(args.days)]
    out = {"archive": phase_archive, "rebuild": phase_rebuild, "night": phase_night, "drift": phase_drift,
           "embed": phase_embed}[args.phase](args, home, days)
    (home / f"{args.phase}.json").write_text(json.dumps(out, indent=1, default=str))
    return 0


def pool_and_outlets(args):
    from synthetic_archive import load_pool, make_outlets

    pool = load_pool(args.data, n_real=args.real, seed=args.seed, cache_dir=args.cache)
    return pool, make_outlets(pool, args.outlets)


def tiny_adapter(args) -> Path:
    """The adapter the stubs record as model_version: trained once as nightly_cost.py does, then cached."""
    from nightly_cost import train_tiny_adapter

    folder = Path(args.cache) / "adapter"
    if not (folder / "mlflow_run.json").exists():
        train_tiny_adapter(folder)
    return folder


def text_window() -> str:
    from opensentiment_pipeline.core.vectors import encoder_versions
    from opensentiment_pipeline.defs.assets.vectors import ArticleEmbeddingsConfig

    config = ArticleEmbeddingsConfig()
    return encoder_versions.text_window(include_title=config.include_title, max_length=config.max_length,
                                        max_chunks=config.max_chunks)


def phase_archive(args, home: Path, days: list[str]) -> dict:
    from synthetic_archive import write_archive

    from opensentiment_pipeline.defs.adapters import adapter_version

    pool, outlets = pool_and_outlets(args)
    version = adapter_version(str(tiny_adapter(args)))
    stats = write_archive(home / "assets", days, args.size, pool, outlets, seed=args.seed, model_version=version,
                          text_window=text_window())
    stats["bytes_on_disk"] = sum(f.stat().st_size for f in (home / "assets").rglob("*.parquet"))
    return stats


class RssSampler:
    """The process's resident set size every `interval` seconds, on a background thread, as (unix time, bytes)."""

    def __init__(self, interval: float = 0.05):
        self.interval, self.samples, self._stop = interval, [], threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self._page

    def _run(self):
        while not self._stop.is_set():
            self.samples.append((time.time(), self.rss()))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def peak(self, start: float, end: float) -> int:
        inside = [rss for t, rss in self.samples if start <= t <= end]
        if inside:
            return max(inside)
        nearest = min(self.samples, key=lambda s: abs(s[0] - end))  # a step shorter than one interval
        return nearest[1]


def pipeline(args, home: Path, night_stubs: dict | None = None):
    """Assets (sentiment_adapter stubbed; with `night_stubs`, the model steps too), resources with a read log."""
    import dagster as dg

    from opensentiment_pipeline import definitions
    from opensentiment_pipeline.defs.resources import ParquetIOManager

    adapter_dir = str(tiny_adapter(args))

    @dg.asset(name="sentiment_adapter")
    def adapter_stub() -> str:
        return adapter_dir

    stubs = [adapter_stub, *(night_stubs["assets"] if night_stubs else [])]
    replaced = {k for a in stubs for k in a.keys}
    assets = [a for a in definitions.ASSETS if not set(a.keys) & replaced] + stubs
    resources = definitions.resources_for(home, tracking_uri=f"sqlite:///{home}/mlflow.db")
    resources["parquet_io_manager"] = ParquetIOManager(base_dir=str(home / "assets"),
                                                       read_log=str(home / "read_log.jsonl"))
    return assets, resources


def instance(home: Path):
    import dagster as dg

    (home / "dagster").mkdir(exist_ok=True)
    return dg.instance_for_test(temp_dir=str(home / "dagster"))


def rebuild_config(assets, names, home: Path, fresh_state: str | None) -> dict:
    """`rebuild: true` for each of `names` whose Config has it; with `fresh_state`, also a new, empty state
    folder (<home>/<fresh_state>/<asset>) for each that takes one (but KEEP_FIT_ON_DRIFT), so a refit reads
    nothing a night left."""
    ops = {}
    for asset in assets:
        for key in asset.keys:
            name = key.to_user_string()
            field = asset.op.config_field if name in names else None
            fields = set(field.config_type.fields) if field is not None else set()
            config = {"rebuild": True} if "rebuild" in fields else {}
            # The axis keeps its fit on `rebuild: true` (its sums are recomputed from every day): the drift check
            # compares that with the night's, so its state stays; the map and the index rebuild from nothing.
            fresh = fresh_state and name not in KEEP_FIT_ON_DRIFT
            for folder_field in sorted(f for f in fields if f in STATE_FOLDER_FIELDS and fresh):
                config[folder_field] = str(home / fresh_state / name)
            if config:
                ops[asset.op.name] = {"config": config}
    return {"ops": ops}


def measured_run(home: Path, launch) -> dict:
    """Run `launch(instance)` under the RSS sampler; wall time, per-step seconds and peak RSS, days read."""
    log = home / "read_log.jsonl"
    log.unlink(missing_ok=True)
    with instance(home) as dagster_instance, RssSampler() as sampler:
        baseline = sampler.rss()
        start = time.perf_counter()
        result = launch(dagster_instance)
        wall = time.perf_counter() - start
        if not result.success:
            raise RuntimeError(f"the run {result.run_id} failed; its events are in {home / 'dagster'}")
        stats = dagster_instance.get_run_step_stats(result.run_id)
    reads = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    steps = {}
    for s in stats:
        read = {(r["asset"], r["day"]) for r in reads if r["reader"] == s.step_key}
        steps[s.step_key] = {"start": s.start_time, "seconds": round((s.end_time or 0) - (s.start_time or 0), 2),
                             "peak_rss_mb": round(sampler.peak(s.start_time, s.end_time) / 2**20),
                             "stored_days_read": len(read),  # (asset, day) pairs
                             "other_days_read": len({day for _, day in read if day != NEW_DAY})}
    return {"wall_seconds": round(wall, 2), "baseline_rss_mb": round(baseline / 2**20),
            "peak_rss_mb": round(max(rss for _, rss in sampler.samples) / 2**20), "steps": steps,
            "run_id": result.run_id}


def phase_rebuild(args, home: Path, days: list[str], fresh_state: str | None = None) -> dict:
    """The rebuild (state folders: the defaults, empty in a new home), or with `fresh_state` the drift check's
    rebuild into new folders beside the night's."""
    import dagster as dg

    assets, resources = pipeline(args, home)
    with instance(home) as dagster_instance:  # the stub adapter's value, which every run reads
        if not dg.materialize(assets, instance=dagster_instance, resources=resources,
                              selection=dg.AssetSelection.assets("sentiment_adapter")).success:
            raise RuntimeError(f"materializing the stub sentiment_adapter failed; its events are in {home}/dagster")
    config = rebuild_config(assets, REBUILD_ASSETS, home, fresh_state)
    return {"run_config": config, **measured_run(home, lambda inst: dg.materialize(
        assets, instance=inst, resources=resources, run_config=config,
        selection=dg.AssetSelection.assets(*REBUILD_ASSETS)))}


def phase_night(args, home: Path, days: list[str]) -> dict:
    import dagster as dg

    from opensentiment_pipeline import definitions
    from opensentiment_pipeline.defs import jobs

    pool, outlets = pool_and_outlets(args)
    source, rows_by_id = new_day_source(args, home, pool, outlets)
    stubs = night_stubs(pool, rows_by_id, seed=args.seed)
    assets, resources = pipeline(args, home, stubs)
    defs = dg.Definitions(assets=assets, asset_checks=definitions.ASSET_CHECKS, jobs=[jobs.reembedding_job],
                          resources=resources)
    job = defs.resolve_job_def("reembedding_job")
    run_config = {"ops": {"raw_articles": {"config": {"sources": [source]}}}}
    figures = measured_run(home, lambda inst: job.execute_in_process(instance=inst, partition_key=NEW_DAY,
                                                                     run_config=run_config))
    figures["ingested"] = len(pd.read_parquet(home / "assets" / "raw_articles" / f"{NEW_DAY}.parquet",
                                              columns=["article_id"]))
    snapshot = home / "after_night"
    shutil.rmtree(snapshot, ignore_errors=True)
    snapshot.mkdir()
    for name in ("outlet_clusters", "outlet_leaning"):
        if (home / "assets" / f"{name}.parquet").exists():
            shutil.copy2(home / "assets" / f"{name}.parquet", snapshot / f"{name}.parquet")
    if (home / "index").exists():  # article_index's default folder
        shutil.copytree(home / "index", snapshot / "index")
    return figures


def new_day_source(args, home: Path, pool, outlets) -> tuple[dict, dict[str, int]]:
    """A Parquet file of the night's articles (a feed export; multi-line leads make CSV fragile) and the pool
    row of each article id."""
    from synthetic_archive import SOURCE_NAME, synthetic_articles

    raw, rows = synthetic_articles(NEW_DAY, args.new, pool, outlets, np.random.default_rng([args.seed, 10**6]))
    path = home / "new_day.parquet"
    raw.assign(id=raw["article_id"].str.split(":", n=1).str[1], published_at=raw["published_at"].map(
        lambda t: t.isoformat()))[["id", "title", "text", "outlet", "published_at", "leaning", "topic"]].to_parquet(
        path, index=False)
    columns = {c: c for c in ("id", "title", "text", "outlet", "published_at", "leaning", "topic")}
    return {"name": SOURCE_NAME, "path": str(path), "columns": columns}, dict(zip(raw["article_id"], rows))


def night_stubs(pool, rows_by_id: dict[str, int], *, seed: int) -> dict:
    """article_embeddings (+ article_sentences) and entity_mentions for one day, drawn like the archive's."""
    import dagster as dg

    from synthetic_archive import derived_tables, mention_table

    from opensentiment_pipeline.defs.adapters import adapter_version
    from opensentiment_pipeline.defs.partitions import DAILY, DAY_BACKFILL

    window = text_window()

    @dg.multi_asset(outs={name: dg.AssetOut(io_manager_key="parquet_io_manager", group_name="analysis",
                                            is_required=False) for name in ("article_embeddings", "article_sentences")},
                    partitions_def=DAILY, backfill_policy=DAY_BACKFILL, can_subset=True)
    def article_embeddings(context: dg.AssetExecutionContext, raw_articles: pd.DataFrame, sentiment_adapter: str):
        raw = raw_articles.reset_index(drop=True)
        rows = raw["article_id"].map(rows_by_id).to_numpy(dtype=np.int64)
        tables = derived_tables(raw, rows, pool, np.random.default_rng([seed, 10**6, 1]),
                                model_version=adapter_version(sentiment_adapter), text_window=window)
        for name in context.selected_output_names:
            yield dg.Output(tables[name], output_name=name)

    @dg.asset(io_manager_key="parquet_io_manager", group_name="analysis", partitions_def=DAILY,
              backfill_policy=DAY_BACKFILL)
    def entity_mentions(article_sentences: pd.DataFrame, sentiment_adapter: str) -> pd.DataFrame:
        return mention_table(article_sentences, np.random.default_rng([seed, 10**6, 2]),
                             model_version=adapter_version(sentiment_adapter))

    return {"assets": [article_embeddings, entity_mentions]}


def phase_drift(args, home: Path, days: list[str]) -> dict:
    from archive_drift import drift_checks

    figures = phase_rebuild(args, home, days, fresh_state="drift_state")
    index_config = figures["run_config"]["ops"].get("article_index", {}).get("config", {})
    figures["checks"] = drift_checks(home / "after_night", home / "assets",
                                     Path(index_config.get("index_dir", home / "index")), new_day=NEW_DAY,
                                     seed=args.seed)
    return figures


def phase_embed(args, home: Path, days: list[str]) -> dict:
    """The night's model step, timed apart: `--embed-n` new-day articles through the embedding path with
    article_embeddings' defaults (vectors and sentence scores from one loaded adapter)."""
    from synthetic_archive import synthetic_articles

    from opensentiment_pipeline.core.model import modeling
    from opensentiment_pipeline.core.vectors import backends, encoding, sentences
    from opensentiment_pipeline.defs.assets.vectors import ArticleEmbeddingsConfig, article_texts

    pool, outlets = pool_and_outlets(args)
    raw, _ = synthetic_articles(NEW_DAY, args.embed_n, pool, outlets, np.random.default_rng([args.seed, 10**6]))
    config = ArticleEmbeddingsConfig()
    manifest, tokenizer, model = modeling.load_adapter(str(tiny_adapter(args)), device="cpu")
    texts = article_texts(raw, config.include_title)
    backend = backends.pick_backend(config.backend, device=modeling.resolve_device("cpu"), num_texts=len(texts),
                                    onnx_min_texts=config.onnx_min_texts)
    window_sentiment = config.article_sentiment == "windows"
    start = time.perf_counter()
    _, scored = sentences.embed_articles_and_sentences(
        model, tokenizer, texts, raw["article_id"].tolist(), labels=manifest.labels, batch_size=config.batch_size,
        max_length=config.max_length, max_chunks=config.max_chunks, sentence_max_length=manifest.max_length,
        max_sentences=config.max_sentences, device="cpu", backend=backend, window_sentiment=window_sentiment)
    seconds = time.perf_counter() - start
    # Tokens through the encoder: every sentence once (adapter on), every window once with the adapter off
    # (topic) and once more with it on when the article sentiment averages windows.
    windows, _ = encoding.chunk_token_ids(tokenizer, texts, max_length=config.max_length, max_chunks=config.max_chunks)
    tokens = int(scored.sentences["n_tokens"].sum()) + sum(map(len, windows)) * (2 if window_sentiment else 1)
    return {"articles": args.embed_n, "backend": backend, "seconds": round(seconds, 2),
            "seconds_per_10k": round(seconds / args.embed_n * 10_000, 1), "tokens": tokens,
            "tokens_per_article": round(tokens / args.embed_n), "tokens_per_second": round(tokens / seconds)}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
