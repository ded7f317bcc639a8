"""What each story says about the outlets: coverage by leaning, blindspots, per-outlet sentiment and words, and
how much outlets agree over the stories they share.

A story table has one row per (story, outlet that covered it): the story's own columns repeat on each of its rows
(`STORY_COLUMNS`), so the outlets' columns (`OUTLET_COLUMNS`) sit beside them and one frame serves both the story
pages and the outlet-pair table. `stories.drop_duplicates("story_id")` is the one-row-per-story view.

Blindspot: a story is a blindspot for one side when at least `blindspot_min_outlets` outlets with a leaning covered
it and the other side's outlets make up at least `blindspot_share` of its left and right outlets (center outlets
count for neither): "right" coverage with (almost) no "left" outlets is a blindspot for the left.
"""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.analysis import story_words
from opensentiment_pipeline.core.analysis.leaning.references import LEANINGS

STORY_COLUMNS: tuple[str, ...] = (
    "story_id", "headline", "keywords", "first_day", "last_day", "n_articles", "n_outlets", "outlets",
    "share_left", "share_center", "share_right",  # of the story's outlets that have a leaning; NaN when none has
    "n_unrated_outlets", "leaning_source", "blindspot",  # blindspot: "" or the side that barely covered it
)
OUTLET_COLUMNS: tuple[str, ...] = (
    "outlet", "outlet_leaning", "outlet_articles",
    "sentiment", "sentiment_low", "sentiment_high",  # mean article score (-1 .. +1) and its bootstrap 95 % interval
    "outlet_words",  # the words that set this outlet's telling apart (Monroe et al. log-odds), comma-separated
)
AGREEMENT_COLUMNS: tuple[str, ...] = (
    "outlet_a", "outlet_b", "stories_a", "stories_b", "shared_stories",
    "coverage_jaccard",  # shared / stories either covered
    "sentiment_gap",  # mean |sentiment_a - sentiment_b| over shared stories (0 .. 2); NaN below min_shared
    "sentiment_closeness",  # 1 - gap / 2 (0 .. 1)
)
SENTIMENT_SCORES = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}


def sentiment_scores(labels: pd.Series) -> pd.Series:
    """One number per article for its sentiment: -1 negative, 0 neutral, +1 positive (the article-level label of
    article_embeddings). The one place that says where a story's sentiment comes from, so another source (e.g.
    sentiment toward the story's entities) can replace it."""
    unknown = sorted(set(labels.dropna().astype(str)) - set(SENTIMENT_SCORES))
    if unknown:
        raise ValueError(f"unknown sentiment labels {unknown[:5]}; expected {list(SENTIMENT_SCORES)}")
    return labels.map(SENTIMENT_SCORES).astype(float)


def summarise_stories(members: pd.DataFrame, vectors: np.ndarray, *, reference: story_words.Reference,
                      leaning_source: str, blindspot_share: float, blindspot_min_outlets: int, n_bootstrap: int,
                      top_k_words: int, prior_strength: float, min_z: float, seed: int) -> pd.DataFrame:
    """The story table (STORY_COLUMNS + OUTLET_COLUMNS) of the stories in `members`.

    Each story's rows depend on its own members only (not on which other stories are summarised with it), so a
    story summarised on the night it last gained an article equals the same story summarised in a rebuild.

    Args:
        members: one row per article: article_id, story_id, day, outlet, title, text, sentiment (-1 .. +1, NaN
            when unknown) and leaning (left / center / right / None) of its outlet.
        vectors: `(len(members), dim)` unit topic vectors; the headline is the title nearest the story's mean.
        reference: the word counts keywords and outlet words are weighed against (story_words.Reference).
        leaning_source: where the leanings come from, written into each row (e.g. "source ratings").
        blindspot_share, blindspot_min_outlets: the blindspot rule (module docstring).
        n_bootstrap: resamples of an outlet's articles in a story for its sentiment interval.
        top_k_words, prior_strength, min_z: keywords and outlet words (story_words.log_odds_z).
        seed: seeds the bootstrap.
    """
    missing = {"article_id", "story_id", "day", "outlet", "title", "text", "sentiment", "leaning"} - set(members)
    if missing:
        raise ValueError(f"members lack columns {sorted(missing)}; got {list(members.columns)}")
    if len(vectors) != len(members):
        raise ValueError(f"vectors has {len(vectors)} rows for {len(members)} members")
    if not 0.5 < blindspot_share <= 1.0:
        raise ValueError(f"blindspot_share must be in (0.5, 1]; got {blindspot_share}")
    if members.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in (*STORY_COLUMNS, *OUTLET_COLUMNS)})
    # (story, outlet, article) order: the bootstrap draws and the headline's ties never depend on input order
    order = np.lexsort((members["article_id"].astype(str).to_numpy(), members["outlet"].astype(str).to_numpy(),
                        members["story_id"].astype(str).to_numpy()))
    members, vectors = members.iloc[order].reset_index(drop=True), vectors[order]
    texts = (members["title"].fillna("") + "\n" + members["text"].fillna("")).tolist()
    try:
        vectorizer, counts = story_words.word_counter(texts)
        vocabulary = vectorizer.get_feature_names_out()
        counts = counts.tocsr()  # row slices per story
        alpha = reference.alpha(vocabulary, prior_strength)
    except ValueError:  # no word of 3+ letters outside the stop words in any article
        counts, vocabulary, alpha = None, np.array([], dtype=str), None
    story_ids = members["story_id"].astype(str).to_numpy()
    outlets = members["outlet"].astype(str).to_numpy()
    sentiment = members["sentiment"].to_numpy(dtype=float)
    titles = members["title"].fillna("").astype(str).to_numpy()
    days = members["day"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, story_ids[1:] != story_ids[:-1], True])
    rows: list[dict] = []
    for start, stop in itertools.pairwise(bounds):
        story_row = _story_columns(story_ids[start], titles[start:stop], days[start:stop], outlets[start:stop],
                                   vectors[start:stop])
        words = {}
        if counts is not None:
            story_row["keywords"] = ", ".join(story_words.reference_words(
                counts[start:stop], vocabulary, reference, top_k=top_k_words, prior_strength=prior_strength))
            words = story_words.group_words(counts[start:stop], outlets[start:stop], vocabulary, alpha,
                                            top_k=top_k_words, prior_strength=prior_strength, min_z=min_z)
        cuts = start + np.flatnonzero(np.r_[True, outlets[start + 1:stop] != outlets[start:stop - 1], True])
        for a, b in itertools.pairwise(cuts):
            # one random stream per (story, outlet): its interval does not depend on which other stories the
            # night touched, so a nightly run and a rebuild draw the same resamples
            cell = np.random.default_rng([seed, zlib.crc32(f"{story_ids[start]}\t{outlets[a]}".encode())])
            mean, low, high = _bootstrap_mean(sentiment[a:b], n_bootstrap, cell)
            rows.append({**story_row, "outlet": outlets[a], "outlet_articles": int(b - a), "sentiment": mean,
                         "sentiment_low": low, "sentiment_high": high,
                         "outlet_words": ", ".join(words.get(outlets[a], []))})
    table = pd.DataFrame(rows, columns=[*STORY_COLUMNS, *OUTLET_COLUMNS])
    leanings = members.drop_duplicates("outlet").set_index("outlet")["leaning"].to_dict()
    table = label_leanings(table, leanings, leaning_source=leaning_source, blindspot_share=blindspot_share,
                           blindspot_min_outlets=blindspot_min_outlets)
    return table.sort_values(["first_day", "story_id", "outlet"], kind="stable").reset_index(drop=True)


def label_leanings(table: pd.DataFrame, leanings: dict[str, str | None], *, leaning_source: str,
                   blindspot_share: float, blindspot_min_outlets: int) -> pd.DataFrame:
    """`table` (one row per story and outlet) with its leaning columns (outlet_leaning, share_*,
    n_unrated_outlets, leaning_source, blindspot) set from `leanings` (outlet -> left / center / right / None):
    they read the story's outlets only, so a change of leanings relabels stored stories without their articles."""
    out = table.copy()
    side = out["outlet"].map(lambda o: leanings.get(o)).where(lambda v: v.isin(LEANINGS), None)
    out["outlet_leaning"] = side.astype(object)
    story = out["story_id"].astype(str)
    counts = pd.crosstab(story, side).reindex(columns=list(LEANINGS), fill_value=0) if side.notna().any() else \
        pd.DataFrame(0, index=pd.Index(story.unique()), columns=list(LEANINGS))
    counts = counts.reindex(story.unique(), fill_value=0)
    rated = counts.sum(axis=1)
    for name in LEANINGS:
        share = (counts[name] / rated.where(rated > 0)).astype(float)
        out[f"share_{name}"] = story.map(share).to_numpy(dtype=float)
    outlets_per_story = story.map(story.value_counts())
    out["n_unrated_outlets"] = (outlets_per_story - story.map(rated)).astype(np.int64).to_numpy()
    out["leaning_source"] = leaning_source
    sides = counts["left"] + counts["right"]
    eligible = (rated >= blindspot_min_outlets) & (sides > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        blind = np.where(eligible & (counts["right"] / sides.where(sides > 0) >= blindspot_share), "left",
                         np.where(eligible & (counts["left"] / sides.where(sides > 0) >= blindspot_share), "right", ""))
    out["blindspot"] = story.map(pd.Series(blind, index=counts.index)).astype(object).to_numpy()
    return out


def outlet_agreement(stories: pd.DataFrame, *, min_shared: int) -> pd.DataFrame:
    """Per pair of outlets (AGREEMENT_COLUMNS): how many stories each covered, how many both did, the Jaccard
    overlap of their stories, and the mean gap of their sentiment over shared stories (NaN with fewer than
    `min_shared` shared stories or no sentiment).

    Pairs are counted from each story's own outlets (a join of the table with itself on story_id), so the cost
    grows with the sum over stories of their outlets squared, not with stories x outlets."""
    missing = {"story_id", "outlet", "sentiment"} - set(stories.columns)
    if missing:
        raise ValueError(f"stories lack columns {sorted(missing)}; got {list(stories.columns)}")
    cells = stories.groupby(["story_id", "outlet"], sort=True)["sentiment"].mean().reset_index()
    outlets = sorted(cells["outlet"].unique())
    covered = cells.groupby("outlet").size()
    both = cells.merge(cells, on="story_id", suffixes=("_a", "_b"))
    both = both[both["outlet_a"] < both["outlet_b"]]
    both = both.assign(gap=(both["sentiment_a"] - both["sentiment_b"]).abs())
    shared = both.groupby(["outlet_a", "outlet_b"]).agg(shared_stories=("story_id", "size"),
                                                        gaps=("gap", "count"), gap_sum=("gap", "sum"))
    a, b = np.triu_indices(len(outlets), k=1)
    names = np.asarray(outlets, dtype=object)
    table = pd.DataFrame({"outlet_a": names[a], "outlet_b": names[b]})
    table = table.merge(shared.reset_index(), on=["outlet_a", "outlet_b"], how="left")
    table["stories_a"] = table["outlet_a"].map(covered).astype(np.int64)
    table["stories_b"] = table["outlet_b"].map(covered).astype(np.int64)
    table["shared_stories"] = table["shared_stories"].fillna(0).astype(np.int64)
    either = table["stories_a"] + table["stories_b"] - table["shared_stories"]
    table["coverage_jaccard"] = np.where(either > 0, table["shared_stories"] / either.clip(lower=1), np.nan)
    enough = table["gaps"].fillna(0) >= max(1, min_shared)
    table["sentiment_gap"] = np.where(enough, table["gap_sum"] / table["gaps"].where(enough), np.nan)
    table["sentiment_closeness"] = 1.0 - table["sentiment_gap"] / 2.0
    return table[list(AGREEMENT_COLUMNS)]


def agreement_matrix(agreement: pd.DataFrame, column: str) -> pd.DataFrame:
    """The square outlet x outlet frame of one AGREEMENT_COLUMNS column (diagonal 1 for Jaccard and closeness)."""
    outlets = sorted(set(agreement["outlet_a"]) | set(agreement["outlet_b"]))
    position = {o: i for i, o in enumerate(outlets)}
    values = np.full((len(outlets), len(outlets)), np.nan)
    i = agreement["outlet_a"].map(position).to_numpy(dtype=np.int64)
    j = agreement["outlet_b"].map(position).to_numpy(dtype=np.int64)
    values[i, j] = values[j, i] = agreement[column].to_numpy(dtype=float)
    if column in ("coverage_jaccard", "sentiment_closeness"):
        np.fill_diagonal(values, 1.0)
    return pd.DataFrame(values, index=outlets, columns=outlets)


def rating_counts(outlets: pd.Series, ratings: pd.Series) -> pd.DataFrame:
    """Articles per (outlet, rating) (columns outlet, leaning, n; leaning "" for an article without a rating
    among LEANINGS): the sufficient statistics of `outlet_leanings`, added up night by night."""
    rating = ratings.astype(object).where(ratings.isin(LEANINGS), "")
    frame = pd.DataFrame({"outlet": outlets.astype(str).to_numpy(), "leaning": rating.astype(str).to_numpy()})
    return frame.groupby(["outlet", "leaning"]).size().rename("n").reset_index()


def add_rating_counts(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    both = pd.concat([f for f in (old, new) if len(f)] or [new], ignore_index=True)
    return both.groupby(["outlet", "leaning"])["n"].sum().astype(np.int64).reset_index()


def outlet_leanings(ratings: pd.DataFrame, *, axis_labels: pd.Series | None) -> tuple[dict[str, str | None], str]:
    """Each outlet's leaning and where it came from: its most common source rating (`ratings`: rating_counts;
    ties in LEANINGS order) when any outlet has one, else the bias axis's labels (`axis_labels`), else none."""
    outlets = sorted(ratings["outlet"].unique())
    rated = ratings[ratings["leaning"].isin(LEANINGS) & (ratings["n"] > 0)]
    if len(rated):
        rank = rated.assign(order=rated["leaning"].map({side: i for i, side in enumerate(LEANINGS)}))
        best = rank.sort_values(["outlet", "n", "order"], ascending=[True, False, True]).drop_duplicates("outlet")
        majority = best.set_index("outlet")["leaning"]
        return {o: majority.get(o) for o in outlets}, "source ratings"
    if axis_labels is not None and axis_labels.dropna().isin(LEANINGS).any():
        return {o: axis_labels.get(o) if axis_labels.get(o) in LEANINGS else None for o in outlets}, "bias axis labels"
    return {o: None for o in outlets}, "none"


def _story_columns(story_id: str, titles: np.ndarray, days: np.ndarray, outlets: np.ndarray,
                   vectors: np.ndarray) -> dict:
    """One story's own columns from its articles' arrays (sorted by outlet), its leaning columns aside
    (`label_leanings`); plain numpy, as it runs per story."""
    titled = np.fromiter((len(t) > 0 for t in titles), bool, len(titles))
    similarity = np.where(titled, vectors @ vectors.mean(axis=0), -np.inf)
    headline = str(titles[int(np.argmax(similarity))]) if titled.any() else ""
    names = np.unique(outlets)
    return {"story_id": story_id, "headline": headline, "keywords": "", "first_day": days.min(),
            "last_day": days.max(), "n_articles": len(titles), "n_outlets": len(names),
            "outlets": ", ".join(map(str, names))}


def _bootstrap_mean(values: np.ndarray, n_bootstrap: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap 95 % interval; NaN without values, the value itself for one."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan, np.nan
    mean = float(values.mean())
    if len(values) == 1 or n_bootstrap < 1:
        return mean, mean, mean
    means = values[rng.integers(0, len(values), size=(n_bootstrap, len(values)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return mean, float(low), float(high)
