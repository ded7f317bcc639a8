"""Story quality on BASIL: B-cubed precision, recall and F1 of the stories against BASIL's events, alone and with the
ABP text sample mixed in as distractors (those dated within NEAR_DAYS of a BASIL article, story_vectors.py), for the streaming method (`assign_stories`) and the agglomerative
reference (`agglomerative_stories`).

Settings are chosen on half of the BASIL events (the validation half, by a hash of the event id) and reported on
the other half (test); "all" is every BASIL article under the same choice. Both halves are clustered together
(and with the distractors), only the scoring is split. One setting per method is chosen, on the harder task (with
distractors) and used for both tasks. Only BASIL articles are scored; a distractor in a BASIL story counts as a
wrong member in that story's precision (each distractor is its own event). Also reports how many distractors joined
BASIL stories, and describes how BASIL's `relative_stance` shows in the stories (framing words; per-article
sentiment with --adapter).

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/story_quality.py --cache /path/to/cache [--adapter DIR]
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
from story_vectors import NEAR_DAYS, cached_vectors, read_abp, read_basil, same_period  # noqa: E402

from opensentiment_pipeline.core.analysis import stories, story_words  # noqa: E402

THRESHOLDS = np.round(np.arange(0.30, 0.901, 0.05), 3)
DECAYS = (0.0, 0.01, 0.02, 0.05)
WINDOWS = (2, 4, 7)
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


def streaming_labels(articles: pd.DataFrame, vectors: np.ndarray, **settings) -> np.ndarray:
    update = stories.assign_stories(articles, vectors, stories.StoryState.empty(vectors.shape[1]), **settings)
    story = update.assignments.set_index("article_id")["story_id"]
    return story.reindex(articles["article_id"]).to_numpy()


def reference_cuts(articles: pd.DataFrame, vectors: np.ndarray, *, window_days: int) -> dict[float, np.ndarray]:
    """Labels of the agglomerative reference at every threshold, from one linkage (cutting is cheap)."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    days = stories.article_days(articles["published_at"]).to_numpy(dtype="datetime64[D]").astype(np.int64)
    x = vectors.astype(np.float64)
    distance = np.clip(1.0 - x @ x.T, 0.0, 2.0)
    distance[np.abs(days[:, None] - days[None, :]) > window_days] = 4.0
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    return {t: fcluster(tree, t=1.0 - t, criterion="distance") for t in THRESHOLDS}


def evaluate(articles: pd.DataFrame, vectors: np.ndarray, gold: np.ndarray, basil: np.ndarray, validation: np.ndarray
             ) -> pd.DataFrame:
    """Every setting of both methods, scored on the validation and test halves."""
    rows = []
    for window in WINDOWS:
        for threshold, decay in itertools.product(THRESHOLDS, DECAYS):
            labels = streaming_labels(articles, vectors, threshold=float(threshold), window_days=window,
                                      decay_per_day=decay)
            rows.append(_scores("streaming", labels, gold, basil, validation, threshold=threshold,
                                window_days=window, decay_per_day=decay))
        for threshold, labels in reference_cuts(articles, vectors, window_days=window).items():
            rows.append(_scores("agglomerative", labels, gold, basil, validation, threshold=threshold,
                                window_days=window, decay_per_day=np.nan))
    return pd.DataFrame(rows)


def _scores(method, labels, gold, basil, validation, **settings) -> dict:
    labels = np.asarray(labels).astype(str)
    row = {"method": method, **settings}
    for name, scored in (("val", basil & validation), ("test", basil & ~validation), ("all", basil)):
        row[f"{name}_p"], row[f"{name}_r"], row[f"{name}_f1"] = bcubed(labels, gold, scored)
    basil_stories = set(labels[basil])
    row["distractors_in_basil_stories"] = int((~basil & np.isin(labels, list(basil_stories))).sum())
    return row


def stance_words(basil: pd.DataFrame, *, top_k: int) -> dict[str, list[str]]:
    """Words that set BASIL's left- and right-stanced reports apart from the others of their own event, pooled over
    events: the counts of each report minus its event's mean, so the event's topic cancels out."""
    stance = basil["relative_stance"].str.lower().replace({"liberal": "left", "conservative": "right"})
    texts = (basil["title"] + "\n" + basil["text"]).tolist()
    vectorizer, counts = story_words.word_counter(texts)
    counts = counts.toarray().astype(float)
    vocabulary = vectorizer.get_feature_names_out()
    background = counts.sum(axis=0)
    words = {}
    for side in ("left", "right"):
        group = counts[(stance == side).to_numpy()].sum(axis=0)
        rest = counts[(stance != side).to_numpy()].sum(axis=0)
        z = story_words.log_odds_z(group, rest, background + 1.0, prior_strength=500.0)
        words[side] = [str(vocabulary[i]) for i in np.argsort(-z)[:top_k]]
    return words


def stance_sentiment(basil: pd.DataFrame, adapter: Path) -> pd.DataFrame:
    """Mean sentiment score (-1 .. +1) by relative_stance, from the adapter's predictions on title + lead, and
    the share of events where the left-stanced report scores below the right-stanced one."""
    import torch

    from opensentiment_pipeline.core.analysis import story_coverage
    from opensentiment_pipeline.core.model import modeling
    from opensentiment_pipeline.core.schema import SENTIMENT_LABELS
    from opensentiment_pipeline.core.vectors import encoding

    torch.set_num_threads(1)
    model, tokenizer = modeling.load_adapter(adapter) if hasattr(modeling, "load_adapter") else (None, None)
    if model is None:
        raise ValueError("core.model.modeling has no load_adapter; load the adapter another way")
    _, proba = encoding.embed_and_predict(model, tokenizer, (basil["title"] + "\n\n" + basil["text"]).tolist(),
                                          labels=SENTIMENT_LABELS, batch_size=16, max_length=256, device="cpu")
    labels = pd.Series(np.asarray(SENTIMENT_LABELS)[proba.argmax(axis=1)])
    scored = basil.assign(score=story_coverage.sentiment_scores(labels).to_numpy(),
                          stance=basil["relative_stance"].str.lower().replace({"liberal": "left",
                                                                               "conservative": "right"}))
    return scored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="folder of the cached vectors (story_vectors.py)")
    parser.add_argument("--adapter", type=Path, default=None, help="a sentiment adapter folder, for the "
                        "relative_stance sentiment description")
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
        log.info("%s: %d articles (%d distractors), grid in %.0f s", task, len(frame), len(frame) - len(basil),
                 time.perf_counter() - start)
    chosen = {}
    for method in ("streaming", "agglomerative"):
        grid = results["basil+abp"][results["basil+abp"]["method"] == method]
        best = grid.sort_values(["val_f1", "threshold"], ascending=[False, True]).iloc[0]
        chosen[method] = {k: best[k] for k in ("threshold", "window_days", "decay_per_day")}
    print("\nSettings chosen on the validation events, with distractors (val F1):")
    for method, setting in chosen.items():
        print(f"  {method}: {setting}")
    print("\n| task | method | threshold | window | decay/day | val F1 | test P | test R | test F1 | all F1 | "
          "distractors in BASIL stories |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for task, grid in results.items():
        for method, setting in chosen.items():
            match = grid[(grid["method"] == method) & np.isclose(grid["threshold"], setting["threshold"])
                         & (grid["window_days"] == setting["window_days"])]
            if method == "streaming":
                match = match[np.isclose(match["decay_per_day"], setting["decay_per_day"])]
            row = match.iloc[0]
            print(f"| {task} | {method} | {row.threshold:.3f} | {row.window_days} | {row.decay_per_day:g} | "
                  f"{row.val_f1:.3f} | {row.test_p:.3f} | {row.test_r:.3f} | {row.test_f1:.3f} | {row.all_f1:.3f} | "
                  f"{row.distractors_in_basil_stories if task != 'basil' else '-'} |")
    words = stance_words(basil, top_k=15)
    print("\nrelative_stance, framing words (log-odds z, all BASIL reports):")
    for side, listed in words.items():
        print(f"  {side}-stanced: {', '.join(listed)}")
    if args.adapter is not None:
        scored = stance_sentiment(basil, args.adapter)
        print("\nrelative_stance, mean sentiment score (-1 .. +1) and n:")
        print(scored.groupby("stance")["score"].agg(["mean", "size"]).round(3).to_string())


if __name__ == "__main__":
    main()
