"""Stories: articles about the same event, across outlets, grouped in time.

The streaming method follows Miranda et al. (2018, "Multilingual Clustering of Streaming News"): each story
keeps the sum of its articles' unit topic vectors; an article joins the open story whose centroid is most similar
to it once a time penalty is taken off, if that score reaches `threshold`, and opens a new story otherwise. A story
is open for an article when the article's day is within `window_days` of the story's days. Articles are taken day
by day, oldest first, and within a day in (published_at, article_id) order, so the assignment does not depend on
how the days were split into nights, with two exceptions: a rebuild re-centres the vectors on the whole archive's
mean (a nightly run keeps the centre fixed on its first night), and an article that arrives after its day was
processed is assigned after newer ones. Keywords and words are weighed against the night's touched stories.

The state a night needs (`StoryState`) is the open stories only: per story its centroid, size and first and last
day. Stories whose last day is more than `window_days` before the newest day seen are closed and leave the state,
so a night costs the new day and the stories still open, not the archive.

`agglomerative_stories` is the reference: average-linkage clustering on cosine distance of all articles at once,
with pairs further apart than the window kept apart.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

STATE_COLUMNS: tuple[str, ...] = ("story_id", "first_day", "last_day", "n_articles")
ASSIGNMENT_COLUMNS: tuple[str, ...] = ("article_id", "story_id", "day", "similarity")
CANDIDATES = 20  # open stories per article kept from the night's one matrix product (see _top_open)
BATCH = 64  # articles per matrix product against the stories touched earlier the same day
_FAR = 4.0  # cosine distance given to pairs outside the window: above any threshold (cosine distance <= 2)


@dataclass(frozen=True)
class StoryState:
    """The open stories: `stories` (STATE_COLUMNS, days as datetime64[ns] at midnight) and `centroids`
    `(len(stories), dim)` float32, the sum of each story's centred unit vectors (row i belongs to
    stories.iloc[i]); `center` `(dim,)` is subtracted from every topic vector before it is compared (zeros: none).

    Sentence-encoder vectors share a common direction (all-MiniLM-L6-v2 news vectors have cosine ~0.5 to their
    mean), so a growing story's centroid drifts towards it and can draw in everything; comparing the vectors minus
    their mean removes that direction (Mu & Viswanath 2018, "All-but-the-Top"). The center is fixed when the
    stories are first built and kept from night to night, so nights stay comparable."""

    stories: pd.DataFrame
    centroids: np.ndarray
    center: np.ndarray

    @classmethod
    def empty(cls, dim: int, center: np.ndarray | None = None) -> StoryState:
        frame = pd.DataFrame({"story_id": pd.Series(dtype=str), "first_day": pd.Series(dtype="datetime64[ns]"),
                              "last_day": pd.Series(dtype="datetime64[ns]"), "n_articles": pd.Series(dtype=int)})
        center = np.zeros(dim, dtype=np.float32) if center is None else np.asarray(center, dtype=np.float32)
        if center.shape != (dim,):
            raise ValueError(f"center must have shape ({dim},); got {center.shape}")
        return cls(stories=frame, centroids=np.zeros((0, dim), dtype=np.float32), center=center)


@dataclass(frozen=True)
class StoryUpdate:
    """What one call of `assign_stories` did: each new dated article's story (ASSIGNMENT_COLUMNS; `similarity` is
    its time-penalised score against the story it joined, NaN when it opened one), the state after it, how many
    articles had no date (left out), and the stories that closed."""

    assignments: pd.DataFrame
    state: StoryState
    undated: int
    closed: list[str]


def story_id_of(article_id: str) -> str:
    """A story's id, from the id of the article that opened it: stable from night to night and on a rebuild."""
    return "story-" + hashlib.sha1(str(article_id).encode("utf-8")).hexdigest()[:12]


def article_days(published_at: pd.Series) -> pd.Series:
    """Each article's UTC day (datetime64[ns] at midnight, tz-naive); NaT when the date is unknown."""
    stamps = pd.to_datetime(published_at, utc=True, errors="coerce")
    return stamps.dt.tz_convert(None).dt.floor("D")


def assign_stories(articles: pd.DataFrame, vectors: np.ndarray, state: StoryState, *, threshold: float,
                   window_days: int, decay_per_day: float) -> StoryUpdate:
    """Put each article into an open story of `state` or a new one, day by day, oldest first.

    Args:
        articles: columns article_id, published_at (undated rows are left out and counted).
        vectors: `(len(articles), dim)` unit topic vectors, row i for articles.iloc[i].
        state: the open stories before these articles (`StoryState.empty(dim)` for the first night).
        threshold: lowest score that joins a story; score = cosine(article, story centroid) - decay_per_day x gap,
            gap = days between the article and the nearest day of the story (0 inside it).
        window_days: an article may join a story only when gap <= window_days.
        decay_per_day: the time penalty per day of gap (0 = the window alone).

    Returns:
        a `StoryUpdate`; `state` is not changed.
    """
    _check_inputs(articles, vectors, state, threshold=threshold, window_days=window_days, decay_per_day=decay_per_day)
    days = article_days(articles["published_at"])
    dated = days.notna().to_numpy()
    frame = pd.DataFrame({"article_id": articles["article_id"].astype(str).to_numpy(), "day": days.to_numpy(),
                          "stamp": pd.to_datetime(articles["published_at"], utc=True, errors="coerce").to_numpy(),
                          "row": np.arange(len(articles))})[dated]
    frame = frame.sort_values(["day", "stamp", "article_id"], kind="stable")
    book = _Book(state)
    assigned: list[tuple[str, str, np.datetime64, float]] = []
    for day, group in frame.groupby("day", sort=True):
        today = np.datetime64(day, "D").astype(np.int64)
        x = _normalise(vectors[group["row"].to_numpy()].astype(np.float32) - state.center)  # (n_day, dim)
        open_rows = np.flatnonzero((book.last[: book.n] >= today - window_days)
                                   & (book.first[: book.n] <= today + window_days))
        penalty = decay_per_day * book.gap(open_rows, today)  # (n_open,)
        cand_rows, cand_scores = _top_open(x, book.unit[open_rows], penalty, open_rows)
        # Stories that gained or opened with an article today, as rows of `touched` (their unit centroids): they
        # contain today, so no time penalty, and they are compared exactly, in blocks of BATCH articles.
        touched = np.zeros((len(x), x.shape[1]), dtype=np.float32)
        touched_rows: list[int] = []
        position: dict[int, int] = {}
        for b0 in range(0, len(x), BATCH):
            block = x[b0:b0 + BATCH]
            m0 = len(touched_rows)
            block_sims = block @ touched[:m0].T  # (batch, m0), stale for rows changed within the block
            changed: list[int] = []
            for j, article_id in enumerate(group["article_id"].iloc[b0:b0 + BATCH]):
                k, xk = b0 + j, block[j]
                scores = np.empty(len(touched_rows), dtype=np.float32)
                scores[:m0] = block_sims[j]
                if changed:
                    scores[changed] = touched[changed] @ xk
                keep = np.fromiter((r not in position for r in cand_rows[k]), bool, len(cand_rows[k]))
                rows = np.concatenate([np.asarray(touched_rows, dtype=np.int64), cand_rows[k][keep]])
                scores = np.concatenate([scores, cand_scores[k][keep]])
                pick = int(np.argmax(scores)) if len(scores) else -1
                if pick >= 0 and scores[pick] >= threshold:
                    row, score = int(rows[pick]), float(scores[pick])
                    book.add(row, xk, today)
                else:
                    row, score = book.append(story_id_of(article_id), xk, today), np.nan
                if row not in position:
                    position[row] = len(touched_rows)
                    touched_rows.append(row)
                touched[position[row]] = book.unit[row]
                if position[row] not in changed:
                    changed.append(position[row])
                assigned.append((article_id, book.ids[row], day, score))
    newest = int(book.last[: book.n].max()) if book.n else 0
    keep = book.last[: book.n] >= newest - window_days
    stories = pd.DataFrame({"story_id": book.ids,
                            "first_day": book.first[: book.n].astype("datetime64[D]").astype("datetime64[ns]"),
                            "last_day": book.last[: book.n].astype("datetime64[D]").astype("datetime64[ns]"),
                            "n_articles": book.size[: book.n].copy()})
    new_state = StoryState(stories=stories[keep].reset_index(drop=True), centroids=book.sums[: book.n][keep].copy(),
                           center=state.center)
    assignments = pd.DataFrame(assigned, columns=list(ASSIGNMENT_COLUMNS))
    assignments["day"] = pd.to_datetime(assignments["day"])
    return StoryUpdate(assignments=assignments, state=new_state, undated=int((~dated).sum()),
                       closed=stories.loc[~keep, "story_id"].tolist())


def agglomerative_stories(articles: pd.DataFrame, vectors: np.ndarray, *, threshold: float, window_days: int,
                          center: np.ndarray | None) -> pd.Series:
    """The reference: average-linkage clustering of all dated articles at once on cosine distance, cut at distance
    1 - threshold; pairs more than `window_days` apart get a distance no merge can reach below the cut alone.
    With `center` the vectors are compared minus it, as `assign_stories` does with `StoryState.center`.

    Returns the story id of each dated article (index = article_id), ids from each story's first article.
    Memory is O(n^2): meant for evaluation sets of up to ~20k articles, not the archive."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    days = article_days(articles["published_at"])
    dated = days.notna().to_numpy()
    x = vectors[dated].astype(np.float64) - (0.0 if center is None else np.asarray(center, dtype=np.float64))
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    ids = articles["article_id"].astype(str).to_numpy()[dated]
    day_numbers = days[dated].to_numpy(dtype="datetime64[D]").astype(np.int64)
    if len(ids) < 2:
        return pd.Series([story_id_of(a) for a in ids], index=ids, dtype=str)
    distance = np.clip(1.0 - x @ x.T, 0.0, 2.0)
    distance[np.abs(day_numbers[:, None] - day_numbers[None, :]) > window_days] = _FAR
    np.fill_diagonal(distance, 0.0)
    labels = fcluster(linkage(squareform(distance, checks=False), method="average"), t=1.0 - threshold,
                      criterion="distance")
    order = pd.DataFrame({"article_id": ids, "label": labels, "day": day_numbers}).sort_values(["day", "article_id"])
    founders = order.drop_duplicates("label").set_index("label")["article_id"]
    return pd.Series([story_id_of(founders[label]) for label in labels], index=ids, dtype=str)


def _top_open(x: np.ndarray, open_unit: np.ndarray, penalty: np.ndarray, open_rows: np.ndarray
              ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """For each of the day's articles, the CANDIDATES open stories with the best time-penalised score and those
    scores, from one matrix product against the centroids as they stood at the start of the day (in blocks, so
    memory stays ~100 MB). A story that gains an article during the day is then compared exactly for the rest of
    it, so the choice is exact unless more than CANDIDATES of an article's best open stories gained articles
    earlier the same day."""
    if len(open_rows) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return [empty] * len(x), [np.zeros(0, dtype=np.float32)] * len(x)
    k = min(CANDIDATES, len(open_rows))
    block = max(1, 25_000_000 // len(open_rows))
    rows: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for start in range(0, len(x), block):
        sims = x[start:start + block] @ open_unit.T - penalty[None, :]  # (block, n_open)
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < len(open_rows) else np.tile(np.arange(k), (len(sims), 1))
        rows.extend(open_rows[top])
        scores.extend(np.take_along_axis(sims, top, axis=1).astype(np.float32))
    return rows, scores


class _Book:
    """The stories while a call runs: growable arrays of centroid sums, unit centroids, first and last day (days
    since 1970) and sizes, row i for ids[i]."""

    def __init__(self, state: StoryState) -> None:
        n, dim = len(state.stories), state.centroids.shape[1]
        capacity = max(1024, 2 * n)
        self.ids = list(state.stories["story_id"].astype(str))
        self.sums = np.zeros((capacity, dim), dtype=np.float32)
        self.sums[:n] = state.centroids
        self.unit = np.zeros_like(self.sums)
        self.unit[:n] = _normalise(self.sums[:n])
        self.first = np.zeros(capacity, dtype=np.int64)
        self.last = np.zeros(capacity, dtype=np.int64)
        self.first[:n] = state.stories["first_day"].to_numpy(dtype="datetime64[D]").astype(np.int64)
        self.last[:n] = state.stories["last_day"].to_numpy(dtype="datetime64[D]").astype(np.int64)
        self.size = np.zeros(capacity, dtype=np.int64)
        self.size[:n] = state.stories["n_articles"].to_numpy(dtype=np.int64)
        self.n = n

    def gap(self, rows: np.ndarray, day: int) -> np.ndarray:
        """Days between `day` and the nearest day of each story (0 when inside it)."""
        return np.maximum(0, np.maximum(day - self.last[rows], self.first[rows] - day))

    def add(self, row: int, x: np.ndarray, day: int) -> None:
        self.sums[row] += x
        self.unit[row] = _normalise(self.sums[row][None, :])[0]
        self.size[row] += 1
        self.first[row], self.last[row] = min(self.first[row], day), max(self.last[row], day)

    def append(self, story_id: str, x: np.ndarray, day: int) -> int:
        if self.n == len(self.sums):
            for name in ("sums", "unit", "first", "last", "size"):
                array = getattr(self, name)
                setattr(self, name, np.concatenate([array, np.zeros_like(array)]))
        row = self.n
        self.ids.append(story_id)
        self.sums[row], self.unit[row] = x, _normalise(x[None, :])[0]
        self.first[row] = self.last[row] = day
        self.size[row] = 1
        self.n += 1
        return row


def _normalise(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def _check_inputs(articles: pd.DataFrame, vectors: np.ndarray, state: StoryState, *, threshold: float,
                  window_days: int, decay_per_day: float) -> None:
    missing = {"article_id", "published_at"} - set(articles.columns)
    if missing:
        raise ValueError(f"articles lack columns {sorted(missing)}; got {list(articles.columns)}")
    if vectors.ndim != 2 or len(vectors) != len(articles):
        raise ValueError(f"vectors must be (len(articles), dim) = ({len(articles)}, dim); got {vectors.shape}")
    if (state.centroids.shape[1:] != vectors.shape[1:] or len(state.centroids) != len(state.stories)
            or state.center.shape != vectors.shape[1:]):
        raise ValueError(f"the story state holds {len(state.stories)} stories and centroids {state.centroids.shape}; "
                         f"the vectors are {vectors.shape}: rebuild the stories (rebuild: true) after a new encoder")
    if not -1.0 <= threshold <= 1.0 or window_days < 0 or decay_per_day < 0:
        raise ValueError(f"threshold must be in [-1, 1], window_days and decay_per_day >= 0; got {threshold}, "
                         f"{window_days}, {decay_per_day}")
    duplicated = articles["article_id"].astype(str).duplicated()
    if duplicated.any():
        raise ValueError(f"article ids repeat, e.g. {articles.loc[duplicated, 'article_id'].head(3).tolist()}")


STATE_FILES = {"open": "open_stories.parquet", "centroids": "open_centroids.npy", "center": "center.npy",
               "assignments": "assignments.parquet", "table": "stories.parquet"}


def save_state(folder, state: StoryState, assignments: pd.DataFrame, table: pd.DataFrame) -> None:
    """Write the open stories, their centroids, every article's story and the story table into `folder`."""
    from pathlib import Path

    folder = Path(folder)
    state.stories.to_parquet(folder / STATE_FILES["open"], index=False)
    np.save(folder / STATE_FILES["centroids"], state.centroids)
    np.save(folder / STATE_FILES["center"], state.center)
    assignments.to_parquet(folder / STATE_FILES["assignments"], index=False)
    table.to_parquet(folder / STATE_FILES["table"], index=False)


def load_state(folder, *, dim: int) -> tuple[StoryState, pd.DataFrame, pd.DataFrame | None]:
    """(open stories, assignments, story table) as `save_state` wrote them; an empty state when `folder` holds
    none (the first night)."""
    from pathlib import Path

    folder = Path(folder)
    if not (folder / STATE_FILES["open"]).exists():
        return empty_state(dim)  # the caller sets the center of a first night
    state = StoryState(stories=pd.read_parquet(folder / STATE_FILES["open"]),
                       centroids=np.load(folder / STATE_FILES["centroids"]), center=np.load(folder / STATE_FILES["center"]))
    return state, pd.read_parquet(folder / STATE_FILES["assignments"]), pd.read_parquet(folder / STATE_FILES["table"])


def empty_state(dim: int, center: np.ndarray | None = None) -> tuple[StoryState, pd.DataFrame, None]:
    """What `load_state` returns before the first night (and what `rebuild` starts from)."""
    return (StoryState.empty(dim, center), pd.DataFrame({c: pd.Series(dtype=object) for c in ASSIGNMENT_COLUMNS}),
            None)
