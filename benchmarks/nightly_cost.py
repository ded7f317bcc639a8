"""Nightly cost: one new day (1 % of the articles) vs re-embedding every day, through the real Dagster jobs.

`--n` Article-Bias-Prediction articles (title + body) get synthetic publish dates spread evenly over `--days`
days (so a day holds 1/days of them) and are ingested into day partitions. An adapter is trained for one epoch
on 64 demo sentences (its quality does not matter here; all six layers are kept, so an embedding costs what it
costs in production). Then, on one temporary Dagster instance:

- **full re-embedding**: `article_embeddings` and everything downstream over every day in one run, as
  `make reembed` does after a new adapter;
- **one night**: `reembedding_job` for the last day, as the schedule launches it: ingest that day, embed it,
  rebuild the index, the outlet map and the bias axis over all days.

Per-step wall times come from Dagster's step stats. The ratio of the embedding steps is the incremental cost of
embedding; the ratio of whole runs adds what a night repeats over all days (reading the sources, re-clustering).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/nightly_cost.py --n 5000 --days 100
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000, help="articles in the corpus")
    parser.add_argument("--days", type=int, default=100, help="days they are spread over (1 day = 1/days)")
    parser.add_argument("--data", default="../shared/data/article_bias_prediction/"
                        "abp_articles_text_sample_cap300_per_source.parquet")
    parser.add_argument("--max-length", type=int, default=256, help="article_embeddings max_length")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    today = dt.datetime.now(dt.timezone.utc).date()
    first_day = today - dt.timedelta(days=args.days)
    # The partitions definition is built at import: point its archive day at the corpus's first day.
    os.environ["OPENSENTIMENT_FIRST_DAY"] = first_day.isoformat()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import dagster as dg

    from opensentiment_pipeline import definitions
    from opensentiment_pipeline.defs import jobs, partitions

    work = Path(tempfile.mkdtemp(prefix="nightly_cost_"))
    source = write_corpus(args, first_day, work / "corpus.csv")
    adapter_dir = train_tiny_adapter(work / "adapter")

    @dg.asset(name="sentiment_adapter")
    def adapter_stub() -> str:
        return str(adapter_dir)

    assets = [a for a in definitions.ASSETS if "sentiment_adapter" not in {k.to_user_string() for k in a.keys}]
    assets.append(adapter_stub)
    resources = definitions.resources_for(work / "home", tracking_uri=f"sqlite:///{work}/home/mlflow.db")
    run_config = {"ops": {"raw_articles": {"config": {"sources": [source], "max_rejected_share": 0.5}},
                          "article_embeddings": {"config": {"max_length": args.max_length, "batch_size": 32}}}}
    last_day = (today - dt.timedelta(days=1)).isoformat()
    (work / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(work / "dagster")) as instance:
        ingest = dg.materialize(assets, instance=instance, resources=resources,
                                run_config={"ops": {"raw_articles": run_config["ops"]["raw_articles"]}},
                                selection=dg.AssetSelection.assets("raw_articles", "sentiment_adapter"),
                                tags=partitions.range_tags())
        assert ingest.success
        full = timed(lambda: dg.materialize(
            assets, instance=instance, resources=resources,
            run_config={"ops": {"article_embeddings": run_config["ops"]["article_embeddings"]}},
            selection=dg.AssetSelection.assets("article_embeddings").downstream(), tags=partitions.range_tags()))
        defs = dg.Definitions(assets=assets, asset_checks=definitions.ASSET_CHECKS, jobs=[jobs.reembedding_job],
                              resources=resources)
        night = timed(lambda: defs.resolve_job_def("reembedding_job").execute_in_process(
            instance=instance, partition_key=last_day, run_config=run_config))
        report(args, instance, full, night, last_day)
    return 0


def write_corpus(args: argparse.Namespace, first_day: dt.date, path: Path) -> dict:
    """A CSV of n ABP articles, dated round-robin over the days after `first_day`; returns its source config."""
    frame = pd.read_parquet(args.data, columns=["ID", "title", "content_original", "source"])
    frame = frame.dropna(subset=["content_original"]).sample(n=args.n, random_state=args.seed).reset_index(drop=True)
    day = (frame.index % args.days) + 1
    frame["published"] = [(first_day + dt.timedelta(days=int(d))).isoformat() + "T12:00:00Z" for d in day]
    frame.to_csv(path, index=False)
    return {"name": "abp", "path": str(path), "columns": {"id": "ID", "title": "title", "text": "content_original",
                                                          "outlet": "source", "published_at": "published"}}


def train_tiny_adapter(out_dir: Path) -> Path:
    from opensentiment_pipeline.core.model import training
    from opensentiment_pipeline.defs.assets.ingest import DEMO_DIR

    demo = pd.read_csv(DEMO_DIR / "news_demo.csv").head(64)
    examples = pd.DataFrame({"text": demo["body"], "label": demo["annotator_a"],
                             "split": ["val" if i % 4 == 0 else "train" for i in range(len(demo))]})
    training.train_adapter(examples, base_model="packaged:all-MiniLM-L6-v2", out_dir=out_dir, num_layers=None,
                           lora_r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["query", "value"],
                           max_length=64, learning_rate=1e-3, weight_decay=0.0, warmup_ratio=0.0, epochs=1,
                           batch_size=16, grad_accum=1, patience=1, seed=0, device="cpu", precision="auto")
    (out_dir / "mlflow_run.json").write_text(json.dumps({"run_id": "benchmark-adapter"}))
    return out_dir


def timed(launch):
    start = time.perf_counter()
    result = launch()
    assert result.success, "a benchmark run failed"
    return result, time.perf_counter() - start


def step_seconds(instance, run_id: str) -> dict[str, float]:
    return {s.step_key: (s.end_time or 0) - (s.start_time or 0) for s in instance.get_run_step_stats(run_id)}


def report(args, instance, full, night, last_day: str) -> None:
    (full_result, full_wall), (night_result, night_wall) = full, night
    full_steps, night_steps = step_seconds(instance, full_result.run_id), step_seconds(instance, night_result.run_id)
    steps = sorted(set(full_steps) | set(night_steps))
    table = pd.DataFrame({"step": steps,
                          "full re-embedding (s)": [full_steps.get(s) for s in steps],
                          "one night (s)": [night_steps.get(s) for s in steps]})
    embedded = {r: sum(1 for e in res.get_asset_materialization_events()
                       if e.asset_key.to_user_string() == "article_embeddings")
                for r, res in (("full", full_result), ("night", night_result))}
    print(f"# nightly_cost {dt.date.today()} | {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs | python {sys.version.split()[0]}")
    print(f"{args.n} articles over {args.days} days (1 day = {100 / args.days:.1f} %); night = {last_day}; "
          f"day partitions embedded: full {embedded['full']}, night {embedded['night']}")
    print(table.round(2).to_markdown(index=False))
    embed_ratio = night_steps["article_embeddings"] / full_steps["article_embeddings"]
    print(f"\nembedding step: night / full = {night_steps['article_embeddings']:.2f} s / "
          f"{full_steps['article_embeddings']:.2f} s = {embed_ratio:.3f}")
    print(f"whole run (wall, in process): night / full = {night_wall:.1f} s / {full_wall:.1f} s = "
          f"{night_wall / full_wall:.3f}")


if __name__ == "__main__":
    sys.exit(main())
