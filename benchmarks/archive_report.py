"""The tables benchmarks/archive_scale.py prints: per size, each step's wall time, peak RSS and the stored days
it read, in the rebuild and in the night; then the night's growth with the archive."""

import os
import platform
import sys

import pandas as pd

NEW_DAY = "2026-12-01"  # the night's day partition
MODEL_STEPS = ("article_embeddings", "entity_mentions")  # stubbed in the night: the model's cost, timed apart


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}"



def night_excluding_model(night: dict) -> float:
    return sum(s["seconds"] for step, s in night["steps"].items() if step not in MODEL_STEPS)


def report_size(size: int, result: dict) -> None:
    rebuild, night = result["rebuild"], result["night"]
    started = {step: s.get("start") or 0 for run in (rebuild, night) for step, s in run["steps"].items()}
    steps = sorted(set(rebuild["steps"]) | set(night["steps"]),  # the night's order, then the rebuild's
                   key=lambda step: (step not in night["steps"], started[step] if step in night["steps"] else 0,
                                     started[step], step))

    def cell(run: dict, step: str, key: str):
        return run["steps"].get(step, {}).get(key)

    table = pd.DataFrame({
        "step": [f"{s} (stub: model)" if s in MODEL_STEPS else s for s in steps],
        "rebuild s": [cell(rebuild, s, "seconds") for s in steps],
        "rebuild peak RSS MB": [cell(rebuild, s, "peak_rss_mb") for s in steps],
        "night s": [cell(night, s, "seconds") for s in steps],
        "night peak RSS MB": [cell(night, s, "peak_rss_mb") for s in steps],
        "night: other days read": [cell(night, s, "other_days_read") for s in steps]})
    archive = result["archive"]
    print(f"\n## {size:,} stored articles + one night of {night['ingested']:,} ingested | {machine()}")
    print(f"archive written directly: {archive['rows']} rows, draw {archive['draw_seconds']} s, write "
          f"{archive['write_seconds']} s, {archive['bytes_on_disk'] / 2**20:.0f} MB on disk")
    print(table.to_markdown(index=False))
    excl = night_excluding_model(night)
    print(f"rebuild: {rebuild['wall_seconds']} s wall, peak RSS {rebuild['peak_rss_mb']} MB "
          f"(imports alone {rebuild['baseline_rss_mb']} MB)")
    print(f"night: {night['wall_seconds']} s wall, {excl:.1f} s in steps other than the stubbed model steps, "
          f"peak RSS {night['peak_rss_mb']} MB")
    print(f"night (model excluded) / rebuild = {excl:.1f} / {rebuild['wall_seconds']} = "
          f"{excl / rebuild['wall_seconds']:.3f}")
    other = {step: s["other_days_read"] for step, s in night["steps"].items() if s["other_days_read"]}
    print(f"stored days other than the new one ({NEW_DAY}) the night read, per step: {other or 'none'}")
    if "embed" in result:
        embed = result["embed"]
        print(f"model (apart): {embed['articles']} articles embedded in {embed['seconds']} s ({embed['backend']}) "
              f"= {embed['seconds_per_10k']} s per 10,000; {embed.get('tokens_per_article')} tokens per article, "
              f"{embed.get('tokens_per_second')} tokens/s")
    if "drift" in result:
        drift = result["drift"]
        print(f"rebuild after the night: {drift['wall_seconds']} s wall, peak RSS {drift['peak_rss_mb']} MB")
        for name, value in drift["checks"].items():
            print(f"drift: {name}: {value}")


def report_growth(figures: dict) -> None:
    sizes = list(figures["sizes"])
    if not sizes:
        return
    first = night_excluding_model(figures["sizes"][sizes[0]]["night"])
    print("\n## growth of the night (model steps excluded) with the archive")
    rows = []
    for size in sizes:
        result = figures["sizes"][size]
        excl = night_excluding_model(result["night"])
        rows.append({"stored": int(size), "night s": round(excl, 1), f"x vs {int(sizes[0]):,}": round(excl / first, 2),
                     "night peak RSS MB": result["night"]["peak_rss_mb"],
                     "rebuild s": result["rebuild"]["wall_seconds"],
                     "rebuild peak RSS MB": result["rebuild"]["peak_rss_mb"],
                     "night / rebuild": round(excl / result["rebuild"]["wall_seconds"], 3)})
    print(pd.DataFrame(rows).to_markdown(index=False))
