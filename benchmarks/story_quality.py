"""Story quality on BASIL: B-cubed precision, recall and F1 of the stories against BASIL's events, alone and with the
ABP text sample mixed in as distractors (those dated within NEAR_DAYS of a BASIL article, story_vectors.py), for the streaming method (`assign_stories`) and the agglomerative
reference (`agglomerative_stories`).

Settings are chosen on half of the BASIL events (the validation half, by a hash of the event id) and reported on
the other half (test); "all" is every BASIL article under the same choice. Both halves are clustered together
(and with the distractors), only the scoring is split. One setting per method is chosen, on the harder task (with
distractors) and used for both tasks. Only BASIL articles are scored; a distractor in a BASIL story counts as a
wrong member in that story's precision (each distractor is its own event). Also reports how many distractors joined
BASIL stories, and describes whether framing words order an event's reports as BASIL's `relative_stance`
does (`stance_words`).

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/story_quality.py --cache /path/to/cache
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from story_vectors import NEAR_DAYS, cached_vectors, read_abp, read_basil, same_period

from opensentiment_pipeline.core.analysis import stories, story_words

THRESHOLDS = np.round(np.arange(0.30, 0.901, 0.05), 3)
DECAYS = (0.0, 0.02, 0.05)
WINDOWS = (4, 7)  # BASIL's reports of one event are 0-4 days apart
CENTER = (False, True)  # compare the vectors as they are, or minus their mean (StoryState)
log = logging.getLogger("story_quality")


def bcubed(predicted: np.ndarray, gold: np.ndarray, scored: np.ndarray) -> tuple[float, float, float]:
    """B-cubed (Bagga & Baldwin 1998) over the `scored` items: per item, precision = share of its story that shares
    its event, recall = share of its event in its story; averaged, F1 of the averages (Amigo et al. 2009)."""
    frame = pd.DataFrame({"p": predicted, "g": gold})
    both = frame.groupby(["p", "g"])["p"].transform("size")
    precision = (both / frame.groupby("p")["p"].transform("size"))[scored].mean()
    recall = (both / frame.groupby("g")["g"].transform("size"))[scored].mean()
    return float(precision), float(recall), float(2 * precision * recall / (precision + recall))


def validation_half(events: pd.Series) -> np.ndarray:
    """True for the events in the validation half: the half with the smaller sha1 of the event id."""
    digest = events.map(lambda e: hashlib.sha1(str(e).encode()).hexdigest())
    cut = np.sort(digest.unique())[len(digest.unique()) // 2 - 1]
    return (digest <= cut).to_numpy()


def streaming_labels(articles: pd.DataFrame, vectors: np.ndarray, *, center: bool, **settings) -> np.ndarray:
    state = stories.StoryState.empty(vectors.shape[1], vectors.mean(axis=0) if center else None)
    update = stories.assign_stories(articles, vectors, state, **settings)
    story = update.assignments.set_index("article_id")["story_id"]
    return story.reindex(articles["article_id"]).to_numpy()


def reference_cuts(articles: pd.DataFrame, vectors: np.ndarray, *, window_days: int, center: bool
                   ) -> dict[float, np.ndarray]:
    """Labels of the agglomerative reference at every threshold, from one linkage (cutting is cheap); as
    `agglomerative_stories`, on the vectors minus their mean with `center`."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    days = stories.article_days(articles["published_at"]).to_numpy(dtype="datetime64[D]").astype(np.int64)
    x = vectors.astype(np.float64) - (vectors.mean(axis=0) if center else 0.0)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    distance = np.clip(1.0 - x @ x.T, 0.0, 2.0)
    distance[np.abs(days[:, None] - days[None, :]) > window_days] = 4.0
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    return {t: fcluster(tree, t=1.0 - t, criterion="distance") for t in THRESHOLDS}


def evaluate(articles: pd.DataFrame, vectors: np.ndarray, gold: np.ndarray, basil: np.ndarray, validation: np.ndarray
             ) -> pd.DataFrame:
    """Every setting of both methods, scored on the validation and test halves."""
    rows = []
    for window, center in itertools.product(WINDOWS, CENTER):
        for threshold, decay in itertools.product(THRESHOLDS, DECAYS):
            labels = streaming_labels(articles, vectors, center=center, threshold=float(threshold),
                                      window_days=window, decay_per_day=decay)
            rows.append(_scores("streaming", labels, gold, basil, validation, threshold=threshold,
                                window_days=window, decay_per_day=decay, center=center))
        for threshold, labels in reference_cuts(articles, vectors, window_days=window, center=center).items():
            rows.append(_scores("agglomerative", labels, gold, basil, validation, threshold=threshold,
                                window_days=window, decay_per_day=np.nan, center=center))
    return pd.DataFrame(rows)


def _scores(method, labels, gold, basil, validation, **settings) -> dict:
    labels = np.asarray(labels).astype(str)
    row = {"method": method, **settings}
    for name, scored in (("val", basil & validation), ("test", basil & ~validation), ("all", basil)):
        row[f"{name}_p"], row[f"{name}_r"], row[f"{name}_f1"] = bcubed(labels, gold, scored)
    basil_stories = set(labels[basil])
    row["distractors_in_basil_stories"] = int((~basil & np.isin(labels, list(basil_stories))).sum())
    return row


STANCE_SIDE = {"left": -1, "liberal": -1, "center": 0, "right": 1, "conservative": 1}


def stance_words(basil: pd.DataFrame, *, top_k: int, prior_strength: float) -> dict:
    """Whether framing words order the reports of one event as BASIL's `relative_stance` does.

    Leave one event out: the words that set left-stanced reports apart from right-stanced ones (Monroe et al.
    log-odds z over the other 99 events; `top_k` per side) score each report of the held-out event as (left words
    - right words) per 100 words; a pair of its reports with different stances is ordered right when the more
    left-stanced one scores higher. Reported beside the same pairs ordered by outlet alone (each outlet's mean
    stance over the other events), since BASIL's stance follows its outlets closely."""
    side = basil["relative_stance"].str.lower().map(STANCE_SIDE).to_numpy()
    texts = (basil["title"] + "\n" + basil["text"]).tolist()
    vectorizer, counts = story_words.word_counter(texts)
    counts = counts.toarray().astype(float)
    vocabulary = vectorizer.get_feature_names_out()
    length = np.maximum(counts.sum(axis=1), 1.0)
    events, outlets = basil["event"].to_numpy(), basil["outlet"].to_numpy()
    right_words = right_outlet = pairs = 0
    examples: dict[str, list[str]] = {}
    for event in np.unique(events):
        held = events == event
        train = ~held
        left = counts[train & (side == -1)].sum(axis=0)
        right = counts[train & (side == 1)].sum(axis=0)
        z = story_words.log_odds_z(left, right, counts[train].sum(axis=0) + 1.0, prior_strength=prior_strength)
        left_set, right_set = np.argsort(-z)[:top_k], np.argsort(z)[:top_k]
        if not examples:
            examples = {"left": [str(vocabulary[i]) for i in left_set[:12]],
                        "right": [str(vocabulary[i]) for i in right_set[:12]]}
        score = 100 * (counts[:, left_set].sum(axis=1) - counts[:, right_set].sum(axis=1)) / length
        outlet_side = pd.Series(side[train]).groupby(outlets[train]).mean()
        rows = np.flatnonzero(held)
        for a, b in itertools.combinations(rows, 2):
            if side[a] == side[b]:
                continue
            lefter, other = (a, b) if side[a] < side[b] else (b, a)
            pairs += 1
            right_words += score[lefter] > score[other]
            right_outlet += outlet_side[outlets[lefter]] < outlet_side[outlets[other]]
    return {"pairs": pairs, "ordered_by_words": right_words / pairs, "ordered_by_outlet": right_outlet / pairs,
            "example_words": examples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="folder of the cached vectors (story_vectors.py)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    basil, abp = read_basil(), read_abp()
    basil_vectors = cached_vectors(basil, args.cache / "basil.npz")
    abp = same_period(abp, basil)  # story_vectors.py: the distractors that can reach a BASIL story
    abp_vectors = cached_vectors(abp, args.cache / "abp_near.npz")
    validation_events = validation_half(basil["event"])
    results = {}
    for task, (frame, vectors) in {
        "basil": (basil, basil_vectors),
        "basil+abp": (pd.concat([basil, abp], ignore_index=True), np.concatenate([basil_vectors, abp_vectors])),
    }.items():
        articles = pd.DataFrame({"article_id": frame["article_id"], "published_at": frame["day"]})
        is_basil = np.arange(len(frame)) < len(basil)
        gold = np.where(is_basil, frame["event"].astype(str), frame["article_id"].astype(str))
        validation = np.concatenate([validation_events, np.zeros(len(frame) - len(basil), dtype=bool)])
        start = time.perf_counter()
        results[task] = evaluate(articles, vectors, gold, is_basil, validation)
        log.info("%s: %d articles (%d distractors: ABP articles within %d days of a BASIL article), grid in %.0f s",
                 task, len(frame), len(frame) - len(basil), NEAR_DAYS, time.perf_counter() - start)
    chosen = {}
    for method in ("streaming", "agglomerative"):
        grid = results["basil+abp"][results["basil+abp"]["method"] == method]
        best = grid.sort_values(["val_f1", "threshold"], ascending=[False, True]).iloc[0]
        chosen[method] = {k: best[k] for k in ("threshold", "window_days", "decay_per_day", "center")}
    print("\nSettings chosen on the validation events, with distractors (val F1):")
    for method, setting in chosen.items():
        print(f"  {method}: {setting}")
    print("\n| task | method | centred | threshold | window | decay/day | val F1 | test P | test R | test F1 | "
          "all F1 | distractors in BASIL stories |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for task, grid in results.items():
        for method, setting in chosen.items():
            match = grid[(grid["method"] == method) & np.isclose(grid["threshold"], setting["threshold"])
                         & (grid["window_days"] == setting["window_days"]) & (grid["center"] == setting["center"])]
            if method == "streaming":
                match = match[np.isclose(match["decay_per_day"], setting["decay_per_day"])]
            row = match.iloc[0]
            print(f"| {task} | {method} | {row.center} | {row.threshold:.3f} | {row.window_days} | {row.decay_per_day:g} | "
                  f"{row.val_f1:.3f} | {row.test_p:.3f} | {row.test_r:.3f} | {row.test_f1:.3f} | {row.all_f1:.3f} | "
                  f"{row.distractors_in_basil_stories if task != 'basil' else '-'} |")
    stance = stance_words(basil, top_k=50, prior_strength=500.0)
    print(f"\nrelative_stance, leave-one-event-out: {stance['pairs']} pairs of reports with different stances; "
          f"ordered as BASIL does by framing words {stance['ordered_by_words']:.3f}, by outlet alone "
          f"{stance['ordered_by_outlet']:.3f}")
    results["basil+abp"].to_csv(args.cache / "story_quality_grid.csv", index=False)
    best = results["basil+abp"].sort_values("val_f1", ascending=False).groupby(["method", "center"]).head(1)
    print("\nBest validation F1 with distractors per method and centring (all settings: story_quality_grid.csv):")
    print(best[["method", "center", "threshold", "window_days", "decay_per_day", "val_f1", "test_f1"]]
          .round(3).to_markdown(index=False))
    for side, listed in stance["example_words"].items():
        print(f"  {side}-stanced words (first held-out event's fit): {', '.join(listed)}")


if __name__ == "__main__":
    main()
