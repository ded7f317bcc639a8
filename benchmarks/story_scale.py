"""Cost of the nightly story step: one new day of articles against archives of different sizes (synthetic).

What a night of `stories` does, in order, is timed (wall and CPU seconds of this process; on a shared machine the
CPU seconds are the steadier figure): find the new articles (ids not in the stored assignments),
load the open stories, assign the new day (`assign_stories`), summarise the stories it touched
(`summarise_stories`), and write the state back. The archive is synthetic: `--per-day` articles a day, each from an
event that runs 1-4 days (a unit direction; an article is the direction plus isotropic noise, cosine ~0.7 to it),
with short texts drawn from the event's own words and a shared vocabulary. The archive's old days enter the night
only as rows of the assignment table (one per archived article): their stories are closed, so their vectors are
never read. The open stories are built by running the same streaming step over the archive's last `window + 1`
days, so the state a night starts from is the one the nightly runs would have left.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/story_scale.py --archive 100000 1000000 --per-day 10000
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.analysis import stories, story_coverage, story_words

DIM = 384
SETTINGS = {"threshold": 0.5, "window_days": 4, "decay_per_day": 0.0}
SUMMARY = {"leaning_source": "synthetic", "blindspot_share": 0.8, "blindspot_min_outlets": 2, "n_bootstrap": 200,
           "top_k_words": 8, "prior_strength": 500.0, "min_z": 1.96, "seed": 0}
log = logging.getLogger("story_scale")


def synthetic_days(first_day: int, n_days: int, per_day: int, rng: np.random.Generator) -> pd.DataFrame:
    """`per_day` articles on each of `n_days` days from first_day (days since 1970), with event ids and texts."""
    rows = []
    events_per_day = per_day // 4
    for day in range(first_day, first_day + n_days):
        # Events started on this day or the 3 before are live; each article picks one.
        live = np.concatenate([np.arange(events_per_day) + (day - lag) * events_per_day for lag in range(4)])
        picks = rng.choice(live, size=per_day)
        rows.append(pd.DataFrame({"event": picks, "day": day}))
    frame = pd.concat(rows, ignore_index=True)
    frame["article_id"] = [f"a{first_day}-{i}" for i in range(len(frame))]
    return frame


def event_vectors(events: np.ndarray, seed: int) -> np.ndarray:
    """A unit direction per event id, the same for an id whichever call asks (seeded by the id)."""
    out = np.empty((len(events), DIM), dtype=np.float32)
    for i, event in enumerate(events):
        out[i] = np.random.default_rng([seed, int(event)]).standard_normal(DIM)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def article_frame(days: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    unique, inverse = np.unique(days["event"].to_numpy(), return_inverse=True)
    centers = event_vectors(unique, seed=7)[inverse]
    noise = rng.standard_normal((len(days), DIM)).astype(np.float32) / np.sqrt(DIM)
    vectors = centers + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    common = np.array([f"word{i}" for i in range(500)])
    texts = [" ".join([f"event{e}a event{e}b", *rng.choice(common, 20)]) for e in days["event"]]
    articles = pd.DataFrame({"article_id": days["article_id"].to_numpy(),
                             "published_at": pd.to_datetime(days["day"].to_numpy(), unit="D", utc=True),
                             "outlet": rng.choice([f"outlet{i}" for i in range(40)], len(days)),
                             "title": texts, "text": texts, "sentiment": rng.choice([-1.0, 0.0, 1.0], len(days))})
    return articles, vectors


def night(archive: int, per_day: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    archive_days = archive // per_day
    recent_days = min(archive_days, SETTINGS["window_days"] + 1)
    start = 20_000 - archive_days
    recent, recent_vectors = article_frame(synthetic_days(start + archive_days - recent_days, recent_days, per_day, rng),
                                           rng)
    warm = stories.assign_stories(recent, recent_vectors, stories.StoryState.empty(DIM), **SETTINGS)
    old_ids = np.array([f"old-{i}" for i in range(archive - len(recent))], dtype=object)
    archive_assignments = pd.concat([
        pd.DataFrame({"article_id": old_ids, "story_id": "story-closed", "day": pd.Timestamp("2000-01-01"),
                      "similarity": np.nan}), warm.assignments], ignore_index=True)
    new_day, new_vectors = article_frame(synthetic_days(start + archive_days, 1, per_day, rng), rng)
    everything_ids = pd.concat([pd.Series(archive_assignments["article_id"]), new_day["article_id"]],
                               ignore_index=True)
    timings: dict[str, float] = {"archive": archive, "open_stories_before": len(warm.state.stories)}
    with tempfile.TemporaryDirectory() as folder:
        stories.save_state(folder, warm.state, archive_assignments, pd.DataFrame({"story_id": ["x"]}))
        t, c = time.perf_counter(), time.process_time()
        state, assignments, _ = stories.load_state(folder, dim=DIM)
        timings["load_state_s"], timings["load_state_cpu_s"] = time.perf_counter() - t, time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        new = ~everything_ids.isin(assignments["article_id"]).to_numpy()
        timings["find_new_s"], timings["find_new_cpu_s"] = time.perf_counter() - t, time.process_time() - c
        if new.sum() != per_day:
            raise RuntimeError(f"found {new.sum()} new articles, expected {per_day}")
        t, c = time.perf_counter(), time.process_time()
        update = stories.assign_stories(new_day, new_vectors, state, **SETTINGS)
        timings["assign_s"], timings["assign_cpu_s"] = time.perf_counter() - t, time.process_time() - c
        touched = update.assignments["story_id"].unique()
        members_ids = pd.concat([warm.assignments, update.assignments])
        members_ids = members_ids[members_ids["story_id"].isin(touched)]
        pool = pd.concat([recent.assign(row=np.arange(len(recent))),
                          new_day.assign(row=len(recent) + np.arange(len(new_day)))])
        members = members_ids[["article_id", "story_id", "day"]].merge(pool, on="article_id")
        members["leaning"] = "center"
        pool_vectors = np.concatenate([recent_vectors, new_vectors])
        reference = story_words.reference_counts(recent["title"].head(20_000).tolist())  # as the asset keeps one
        t, c = time.perf_counter(), time.process_time()
        story_coverage.summarise_stories(members, pool_vectors[members["row"].to_numpy()], reference=reference,
                                         **SUMMARY)
        timings["summarise_s"], timings["summarise_cpu_s"] = time.perf_counter() - t, time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        stories.save_state(folder, update.state, pd.concat([assignments, update.assignments]), members.head(1))
        timings["save_state_s"], timings["save_state_cpu_s"] = time.perf_counter() - t, time.process_time() - c
    timings.update({"touched_stories": len(touched), "touched_articles": len(members),
                    "new_stories": int(update.assignments["similarity"].isna().sum())})
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=int, nargs="+", default=[100_000, 1_000_000], help="archive sizes")
    parser.add_argument("--per-day", type=int, default=10_000, help="articles a day, in the archive and the new day")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = []
    for archive in args.archive:
        start = time.perf_counter()
        rows.append(night(archive, args.per_day, args.seed))
        log.info("archive %d done in %.0f s", archive, time.perf_counter() - start)
    table = pd.DataFrame(rows)
    steps = ["load_state", "find_new", "assign", "summarise", "save_state"]
    table["night_s"] = table[[f"{step}_s" for step in steps]].sum(axis=1)
    table["night_cpu_s"] = table[[f"{step}_cpu_s" for step in steps]].sum(axis=1)
    print(table.round(2).to_markdown(index=False))


if __name__ == "__main__":
    main()
