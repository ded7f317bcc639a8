"""What the stories keep from night to night, and folding a batch of articles into it.

`StoryFolder` holds the open stories (their centroids), every article's story, the story table, and what the
touched stories' summaries need from earlier days: the open stories' member rows (outlet, title, text, sentiment)
and their topic vectors. A story's table rows depend on its own members only (story_coverage.summarise_stories),
and its leaning columns on its outlets' leanings, which come from per-outlet rating counts kept here too; so a
night reads the new days alone, and folding the days night by night gives the table a rebuild gives.

The reference (the mean topic vector the vectors are centred on, and the word counts keywords are weighed
against) is fixed when the stories are first built, from the first `reference_articles` articles in day order,
and kept by a rebuild with the same encoder: incremental runs and rebuilds compare against the same reference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.analysis import story_coverage, story_words
from opensentiment_pipeline.core.analysis.stories import (ASSIGNMENT_COLUMNS, StoryState, StoryUpdate,
                                                          assign_stories, load_state, save_state)

ARTICLE_COLUMNS: tuple[str, ...] = ("article_id", "outlet", "published_at", "title", "text", "leaning", "sentiment")
MEMBER_COLUMNS: tuple[str, ...] = ("article_id", "story_id", "day", "outlet", "title", "text", "sentiment")
FILES = {"members": "open_members.parquet", "vectors": "open_member_vectors.npy", "center": "reference_center.npy",
         "words": "reference_words.parquet", "ratings": "outlet_ratings.parquet", "info": "state.json"}
STATE_VERSION = 2  # 1: open stories, assignments and table only (no member rows, reference or ratings)


@dataclass(frozen=True)
class StoryFolder:
    """The stories' state; `encoder` is {model_version, text_window} of the vectors folded in, `settings` the
    result-changing settings they were folded with, `center` the reference mean (StoryState.center is it, or
    zeros without centring)."""

    state: StoryState
    assignments: pd.DataFrame
    table: pd.DataFrame
    members: pd.DataFrame
    member_vectors: np.ndarray
    center: np.ndarray
    reference: story_words.Reference
    ratings: pd.DataFrame
    leanings: dict
    leaning_source: str
    undated: int
    encoder: dict
    settings: dict


def start(articles: pd.DataFrame, vectors: np.ndarray, *, encoder: dict, settings: dict, reference_articles: int,
          center_vectors: bool) -> StoryFolder:
    """An empty folder whose reference comes from the first `reference_articles` of `articles` (columns as
    ARTICLE_COLUMNS, the first batch of a build) in (published day, article_id) order."""
    order = articles.assign(_row=np.arange(len(articles)), _day=articles["published_at"].astype(str)).sort_values(
        ["_day", "article_id"], kind="stable").head(reference_articles)["_row"].to_numpy()
    sample = articles.iloc[order]
    center = (vectors[order].astype(np.float64).mean(axis=0).astype(np.float32) if len(order)
              else np.zeros(vectors.shape[1], dtype=np.float32))
    words = story_words.reference_counts((sample["title"].fillna("") + "\n" + sample["text"].fillna("")).tolist())
    return _empty(center, words, encoder=encoder, settings=settings, center_vectors=center_vectors)


def restart(folder: StoryFolder, *, settings: dict, center_vectors: bool) -> StoryFolder:
    """An empty folder with `folder`'s reference and encoder (a rebuild with the same encoder)."""
    return _empty(folder.center, folder.reference, encoder=folder.encoder, settings=settings,
                  center_vectors=center_vectors)


def fold_articles(folder: StoryFolder, articles: pd.DataFrame, vectors: np.ndarray, *, axis_labels: pd.Series | None,
                  threshold: float, window_days: int, decay_per_day: float, blindspot_share: float,
                  blindspot_min_outlets: int, n_bootstrap: int, top_k_words: int, prior_strength: float, min_z: float,
                  seed: int) -> tuple[StoryFolder, StoryUpdate]:
    """Assign the articles (ARTICLE_COLUMNS; `sentiment` a score -1..+1) not yet in `folder` to stories and
    re-summarise the stories they touched; `axis_labels` (outlet -> bias axis label) are used when no source
    rates an outlet. Returns the new folder and the assignment's StoryUpdate."""
    missing = set(ARTICLE_COLUMNS) - set(articles.columns)
    if missing:
        raise ValueError(f"articles lack columns {sorted(missing)}; got {list(articles.columns)}")
    if len(articles) == 0:  # a day without articles: no vector tells the dimension
        vectors = np.zeros((0, len(folder.center)), dtype=np.float32)
    new = ~articles["article_id"].astype(str).isin(folder.assignments["article_id"]).to_numpy()
    arts, vecs = articles[new].reset_index(drop=True), vectors[new]
    update = assign_stories(arts, vecs, folder.state, threshold=threshold, window_days=window_days,
                            decay_per_day=decay_per_day)
    ratings = story_coverage.add_rating_counts(folder.ratings, story_coverage.rating_counts(arts["outlet"],
                                                                                         arts["leaning"]))
    leanings, source = story_coverage.outlet_leanings(ratings, axis_labels=axis_labels)
    rows = pd.Index(arts["article_id"].astype(str)).get_indexer(update.assignments["article_id"])
    joined = update.assignments[["article_id", "story_id", "day"]].reset_index(drop=True)
    for column in ("outlet", "title", "text", "sentiment"):
        joined[column] = arts[column].to_numpy()[rows]
    members = pd.concat([m for m in (folder.members, joined) if len(m)] or [joined], ignore_index=True)
    member_vectors = np.concatenate([folder.member_vectors.reshape(len(folder.members), -1), vecs[rows]]) \
        if len(folder.members) else vecs[rows]
    touched = members["story_id"].isin(set(update.assignments["story_id"])).to_numpy()
    summary = {"blindspot_share": blindspot_share, "blindspot_min_outlets": blindspot_min_outlets}
    fresh = story_coverage.summarise_stories(
        members[touched].assign(leaning=members.loc[touched, "outlet"].map(leanings)), member_vectors[touched],
        reference=folder.reference, leaning_source=source, n_bootstrap=n_bootstrap, top_k_words=top_k_words,
        prior_strength=prior_strength, min_z=min_z, seed=seed, **summary)
    kept = folder.table[~folder.table["story_id"].isin(set(update.assignments["story_id"]))]
    if (leanings, source) != (folder.leanings, folder.leaning_source) and len(kept):
        kept = story_coverage.label_leanings(kept, leanings, leaning_source=source, **summary)
    table = pd.concat([t for t in (kept, fresh) if len(t)] or [fresh], ignore_index=True)
    table = _typed_table(table.sort_values(["first_day", "story_id", "outlet"], kind="stable").reset_index(drop=True))
    still_open = members["story_id"].isin(set(update.state.stories["story_id"])).to_numpy()
    assignments = pd.concat([a for a in (folder.assignments, update.assignments) if len(a)] or [update.assignments],
                            ignore_index=True)
    return replace(folder, state=update.state, assignments=assignments, table=table,
                   members=members[still_open].reset_index(drop=True), member_vectors=member_vectors[still_open],
                   ratings=ratings, leanings=leanings, leaning_source=source,
                   undated=folder.undated + update.undated), update


def empty_articles() -> pd.DataFrame:
    """ARTICLE_COLUMNS with no row."""
    return pd.DataFrame({c: pd.Series(dtype=float if c == "sentiment" else object) for c in ARTICLE_COLUMNS})


def save(path: str | Path, folder: StoryFolder) -> None:
    """Write `folder` into the (new, empty) folder `path`."""
    path = Path(path)
    save_state(path, folder.state, folder.assignments, folder.table)
    folder.members.to_parquet(path / FILES["members"], index=False)
    np.save(path / FILES["vectors"], folder.member_vectors.astype(np.float32))
    np.save(path / FILES["center"], folder.center)
    pd.DataFrame({"word": folder.reference.words, "n": folder.reference.counts}).to_parquet(path / FILES["words"],
                                                                                           index=False)
    folder.ratings.to_parquet(path / FILES["ratings"], index=False)
    info = {"version": STATE_VERSION, "leanings": folder.leanings, "leaning_source": folder.leaning_source,
            "undated": folder.undated, "encoder": folder.encoder, "settings": folder.settings}
    (path / FILES["info"]).write_text(json.dumps(info, indent=1, sort_keys=True))


def load(path: str | Path) -> StoryFolder | None:
    """The folder `save` wrote at `path`; None when there is none of this version (first night, older state)."""
    path = Path(path)
    info_file = path / FILES["info"]
    info = json.loads(info_file.read_text()) if info_file.exists() else {}
    if info.get("version") != STATE_VERSION:
        return None
    center = np.load(path / FILES["center"])
    state, assignments, table = load_state(path, dim=len(center))
    words = pd.read_parquet(path / FILES["words"])
    members = pd.read_parquet(path / FILES["members"])
    return StoryFolder(state=state, assignments=assignments, table=_typed_table(table), members=members,
                       member_vectors=np.load(path / FILES["vectors"]).reshape(len(members), len(center)),
                       center=center, reference=story_words.Reference(words=words["word"].to_numpy().astype(str),
                                                                      counts=words["n"].to_numpy(dtype=np.int64)),
                       ratings=pd.read_parquet(path / FILES["ratings"]), leanings=info["leanings"],
                       leaning_source=info["leaning_source"], undated=int(info["undated"]), encoder=info["encoder"],
                       settings=info["settings"])


def _empty(center: np.ndarray, reference: story_words.Reference, *, encoder: dict, settings: dict,
           center_vectors: bool) -> StoryFolder:
    dim = len(center)
    state = StoryState.empty(dim, center if center_vectors else None)
    members = pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "day" else float if c == "sentiment"
                                         else object) for c in MEMBER_COLUMNS})
    return StoryFolder(state=state, assignments=pd.DataFrame({c: pd.Series(dtype=object) for c in ASSIGNMENT_COLUMNS}),
                       table=_typed_table(story_coverage.summarise_stories(
                           members.assign(leaning=None), np.zeros((0, dim), dtype=np.float32), reference=reference,
                           leaning_source="none", blindspot_share=0.8, blindspot_min_outlets=1, n_bootstrap=0,
                           top_k_words=0, prior_strength=1.0, min_z=0.0, seed=0)),
                       members=members, member_vectors=np.zeros((0, dim), dtype=np.float32), center=center,
                       reference=reference, ratings=pd.DataFrame({"outlet": pd.Series(dtype=object),
                                                                  "leaning": pd.Series(dtype=object),
                                                                  "n": pd.Series(dtype=np.int64)}),
                       leanings={}, leaning_source="none", undated=0, encoder=encoder, settings=settings)


_INTS = ("n_articles", "n_outlets", "n_unrated_outlets", "outlet_articles")
_FLOATS = ("share_left", "share_center", "share_right", "sentiment", "sentiment_low", "sentiment_high")


def _typed_table(table: pd.DataFrame) -> pd.DataFrame:
    """The story table in one set of dtypes, whether it was just built or read back from Parquet."""
    out = table.reindex(columns=[*story_coverage.STORY_COLUMNS, *story_coverage.OUTLET_COLUMNS])
    for column in out.columns:
        if column in ("first_day", "last_day"):
            out[column] = pd.to_datetime(out[column]).astype("datetime64[ns]")
        elif column in _INTS:
            out[column] = out[column].astype(np.int64)
        elif column in _FLOATS:
            out[column] = out[column].astype(np.float64)
        else:
            out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out.reset_index(drop=True)
