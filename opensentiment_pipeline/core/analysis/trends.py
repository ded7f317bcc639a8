"""Week-by-week attention and sentiment per outlet and key (an entity or a topic), with bootstrap intervals, kept
up to date night by night from per-week counts.

Each item (an entity mention, or an article in a topic) carries a label and the week it was published in (the
Monday, from `published_at`; undated items have no week and are left out). A week's net sentiment is
(positives - negatives) / volume. Its interval resamples the week's items with replacement, which is a multinomial
draw of the week's label counts, so the counts are all a week needs (`weekly_stats`), and the draws come from a
random stream seeded by the cell itself (kind, outlet, key, week and the seed): the same counts always give the
same interval, whichever night computed it. A week-on-week change is the difference of two weeks' nets; its
interval comes from the difference of the two weeks' independent resamples, and the change is flagged only when
that interval excludes zero. Weeks without items between an outlet's first and last week for a key are kept with
volume 0, so attention drops show; their net and any change into or out of them are empty (NaN), never flagged.

A night folds the new days' counts into the stored ones (`fold_weekly`) and recomputes only the weeks they touch,
the weeks after those (whose change reads them) and newly filled empty weeks; every other row is kept. The result
equals `fold_weekly` of all the counts at once, exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

WEEKLY_COLUMNS: tuple[str, ...] = (
    "kind", "outlet", "key", "week", "volume", "n_negative", "n_neutral", "n_positive", "negative_share",
    "positive_share", "net_sentiment", "net_low", "net_high", "change", "change_low", "change_high",
    "change_flagged")
ENTITY_COLUMNS: tuple[str, ...] = ("articles", "example_negative", "example_positive")
_COUNTS = ("n_negative", "n_neutral", "n_positive")
CELL = ["outlet", "key", "week"]
# Per (outlet, key, week): label counts, distinct articles and the week's most negative / positive example, with
# what ranks it (the probability, then article id and sentence index, so a tie picks the same sentence every night).
STAT_COLUMNS: tuple[str, ...] = (*CELL, *_COUNTS, "articles",
                                 *(f"example_{side}{part}" for side in ("negative", "positive")
                                   for part in ("", "_p", "_article", "_idx")))
CHUNK = 2048  # cells whose draws are held at once: 2,048 x 1,000 resamples x 8 bytes = 16 MB


def week_start(days: pd.Series) -> pd.Series:
    """The Monday (ISO week start) of each day, as YYYY-MM-DD strings.

    >>> week_start(pd.Series(["2026-11-25", "2026-11-30"])).tolist()
    ['2026-11-23', '2026-11-30']
    """
    parsed = pd.to_datetime(days, errors="coerce")
    if parsed.isna().any():
        bad = pd.Series(days)[parsed.isna()].head(3).tolist()
        raise ValueError(f"days must be dates (YYYY-MM-DD); could not read {bad}")
    return (parsed - pd.to_timedelta(parsed.dt.weekday, unit="D")).dt.strftime("%Y-%m-%d")


def published_weeks(published_at: pd.Series) -> pd.Series:
    """The Monday of each item's UTC publish day (YYYY-MM-DD), None where the date is unknown.

    >>> published_weeks(pd.Series(["2026-11-25T23:30:00Z", None])).tolist()
    ['2026-11-23', None]
    """
    stamps = pd.to_datetime(pd.Series(published_at), utc=True, errors="coerce").dt.tz_convert(None).dt.floor("D")
    weeks = (stamps - pd.to_timedelta(stamps.dt.weekday, unit="D")).dt.strftime("%Y-%m-%d")
    return weeks.astype(object).where(stamps.notna(), None)


def weekly_stats(items: pd.DataFrame, *, examples: bool) -> pd.DataFrame:
    """STAT_COLUMNS per (outlet, key, week) of `items` (columns outlet, key, week, sentiment; with `examples` also
    article_id, sentence_idx, sentence, p_negative, p_positive), non-empty weeks only. Without examples,
    `articles` counts the items (a topic's items are articles)."""
    required = {"outlet", "key", "week", "sentiment"} | (
        {"article_id", "sentence_idx", "sentence", "p_negative", "p_positive"} if examples else set())
    missing = required - set(items.columns)
    if missing:
        raise ValueError(f"items lack columns {sorted(missing)}; got {list(items.columns)}")
    unknown = set(items["sentiment"]) - {"negative", "neutral", "positive"}
    if unknown:
        raise ValueError(f"unknown sentiment labels {sorted(unknown)}; expected negative, neutral, positive")
    if items["week"].isna().any():
        raise ValueError(f"{int(items['week'].isna().sum())} items have no week; leave undated items out first")
    if items.empty:
        return empty_stats()
    frame = items.assign(outlet=items["outlet"].astype(str), key=items["key"].astype(str),
                         week=items["week"].astype(str))
    counts = (pd.crosstab([frame["outlet"], frame["key"], frame["week"]], frame["sentiment"])
              .reindex(columns=["negative", "neutral", "positive"], fill_value=0))
    counts.columns = list(_COUNTS)
    stats = counts.astype(np.int64).reset_index()
    if not examples:
        stats["articles"] = stats[list(_COUNTS)].sum(axis=1)
        return _typed_stats(stats)
    groups = frame.groupby(CELL, sort=True)
    stats["articles"] = groups["article_id"].nunique().to_numpy()
    frame = frame.assign(article_id=frame["article_id"].astype(str),
                         sentence_idx=frame["sentence_idx"].astype(np.int64))
    for side in ("negative", "positive"):
        best = _best_examples(frame.rename(columns={f"p_{side}": "p"}))
        stats = stats.merge(best.rename(columns={"sentence": f"example_{side}", "p": f"example_{side}_p",
                                                 "article_id": f"example_{side}_article",
                                                 "sentence_idx": f"example_{side}_idx"}), on=CELL, how="left")
    return _typed_stats(stats)


def merge_stats(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """The stats of old and new items together: counts and articles add up (an article's items all fall in one
    week and one day), and each cell keeps the better-ranked example of the two."""
    if old.empty or new.empty:
        return _typed_stats(new if old.empty else old)
    both = pd.concat([old, new], ignore_index=True)
    summed = both.groupby(CELL, sort=True)[[*_COUNTS, "articles"]].sum().reset_index()
    for side in ("negative", "positive"):
        columns = {f"example_{side}": "sentence", f"example_{side}_p": "p", f"example_{side}_article": "article_id",
                   f"example_{side}_idx": "sentence_idx"}
        part = both[[*CELL, *columns]].rename(columns=columns)
        best = _best_examples(part[part["sentence"].notna()])
        summed = summed.merge(best.rename(columns={v: k for k, v in columns.items()}), on=CELL, how="left")
    return _typed_stats(summed)


def fold_weekly(table: pd.DataFrame, stats: pd.DataFrame, new: pd.DataFrame, *, kind: str, n_resamples: int,
                level: float, seed: int, entity_columns: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table, stats) after folding the new items' stats `new` into `stats` and `table` (WEEKLY_COLUMNS, plus
    ENTITY_COLUMNS with `entity_columns`, as this function returned them; empty frames the first time).

    Only the rows `new` can change are recomputed: its weeks, the week after each (its change), and the empty
    weeks it fills in; the result equals folding every item at once."""
    _check_settings(n_resamples, level, seed)
    merged = merge_stats(stats, new)
    cells = affected_cells(stats, new, merged=merged)
    rows = weekly_rows(merged, cells, kind=kind, n_resamples=n_resamples, level=level, seed=seed,
                       entity_columns=entity_columns)
    if len(table) and len(cells):
        kept = table.merge(cells.assign(_drop=True), on=CELL, how="left")
        table = table[kept["_drop"].isna().to_numpy()]
    table = pd.concat([t for t in (table, rows) if len(t)] or [rows], ignore_index=True)
    return _typed_table(table.sort_values(CELL, kind="stable").reset_index(drop=True), entity_columns), merged


def affected_cells(stats: pd.DataFrame, new: pd.DataFrame, *, merged: pd.DataFrame | None = None) -> pd.DataFrame:
    """(outlet, key, week) whose row changes when `new` is folded into `stats` (`merged`: the two merged, when
    already at hand): the new weeks, the week after each (when the (outlet, key) has it), and the weeks between
    its old and new first and last weeks."""
    if new.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in CELL})
    merged = merge_stats(stats, new) if merged is None else merged
    groups = new[["outlet", "key"]].drop_duplicates()

    def span(frame: pd.DataFrame) -> pd.DataFrame:  # first and last week (as day numbers) of the touched groups
        part = frame.merge(groups, on=["outlet", "key"])
        return part.assign(d=_day_numbers(part["week"])).groupby(["outlet", "key"])["d"].agg(["min", "max"])

    ranges = span(merged).reset_index().merge(span(stats).reset_index(), on=["outlet", "key"], how="left",
                                              suffixes=("", "_old"))
    fresh = ranges["min_old"].isna().to_numpy()
    earlier = ~fresh & (ranges["min"] < ranges["min_old"]).to_numpy()
    later = ~fresh & (ranges["max"] > ranges["max_old"]).to_numpy()
    spans = pd.concat([  # (outlet, key, lo, hi): runs of weeks to recompute, both ends included
        ranges.loc[fresh, ["outlet", "key", "min", "max"]].set_axis(["outlet", "key", "lo", "hi"], axis=1),
        ranges.loc[earlier, ["outlet", "key", "min", "min_old"]].set_axis(["outlet", "key", "lo", "hi"], axis=1),
        ranges.loc[later, ["outlet", "key", "max_old", "max"]].set_axis(["outlet", "key", "lo", "hi"], axis=1)])
    lo, hi = spans["lo"].to_numpy(dtype=np.int64), spans["hi"].to_numpy(dtype=np.int64)
    lengths = (hi - lo) // 7 + 1
    steps = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    filled = pd.DataFrame({"outlet": np.repeat(spans["outlet"].to_numpy(), lengths),
                           "key": np.repeat(spans["key"].to_numpy(), lengths),
                           "d": np.repeat(lo, lengths) + 7 * steps})
    touched = new[["outlet", "key"]].assign(d=_day_numbers(new["week"]))
    after = touched.assign(d=touched["d"] + 7).merge(ranges[["outlet", "key", "max"]], on=["outlet", "key"])
    after = after[after["d"] <= after["max"]].drop(columns="max")
    cells = pd.concat([touched, after, filled], ignore_index=True).drop_duplicates()
    cells = cells.assign(week=_week_strings(cells["d"].to_numpy(dtype=np.int64)))
    return cells.sort_values(CELL, kind="stable")[CELL].reset_index(drop=True)


def weekly_rows(stats: pd.DataFrame, cells: pd.DataFrame, *, kind: str, n_resamples: int, level: float, seed: int,
                entity_columns: bool) -> pd.DataFrame:
    """The WEEKLY_COLUMNS rows (plus ENTITY_COLUMNS) of `cells` (outlet, key, week) from `stats`; a cell absent
    from `stats` is an empty week."""
    columns = [*WEEKLY_COLUMNS, *(ENTITY_COLUMNS if entity_columns else ())]
    if cells.empty:
        return _typed_table(pd.DataFrame({c: pd.Series(dtype=object) for c in columns}), entity_columns)
    indexed = stats.set_index(CELL)
    out = cells[CELL].reset_index(drop=True).merge(stats, on=CELL, how="left")
    n = out[list(_COUNTS)].fillna(0).to_numpy(dtype=np.int64)  # (cells, 3)
    prev_weeks = _week_strings(_day_numbers(out["week"]) - 7)
    previous = pd.MultiIndex.from_arrays([out["outlet"], out["key"], prev_weeks])
    prev = indexed.reindex(previous)[list(_COUNTS)].fillna(0).to_numpy(dtype=np.int64)
    volume, prev_volume = n.sum(1), prev.sum(1)
    tail = (1 - level) / 2
    bounds = np.full((len(out), 4), np.nan)  # net_low, net_high, change_low, change_high
    for start in range(0, len(out), CHUNK):
        stop = min(start + CHUNK, len(out))
        draws = np.full((stop - start, n_resamples), np.nan)
        prev_draws = np.full_like(draws, np.nan)
        for i in range(start, stop):
            outlet, key, week = out.at[i, "outlet"], out.at[i, "key"], out.at[i, "week"]
            if volume[i]:
                draws[i - start] = cell_draws(n[i], (kind, outlet, key, week), n_resamples=n_resamples, seed=seed)
            if prev_volume[i] and volume[i]:
                prev_draws[i - start] = cell_draws(prev[i], (kind, outlet, key, prev_weeks[i]),
                                                   n_resamples=n_resamples, seed=seed)
        bounds[start:stop, 0], bounds[start:stop, 1] = _quantiles(draws, tail)
        bounds[start:stop, 2], bounds[start:stop, 3] = _quantiles(draws - prev_draws, tail)
    safe = np.maximum(volume, 1)
    net = np.where(volume > 0, (n[:, 2] - n[:, 0]) / safe, np.nan)
    prev_net = np.where(prev_volume > 0, (prev[:, 2] - prev[:, 0]) / np.maximum(prev_volume, 1), np.nan)
    table = pd.DataFrame({
        "kind": kind, "outlet": out["outlet"], "key": out["key"], "week": out["week"], "volume": volume,
        "n_negative": n[:, 0], "n_neutral": n[:, 1], "n_positive": n[:, 2],
        "negative_share": np.where(volume > 0, n[:, 0] / safe, np.nan),
        "positive_share": np.where(volume > 0, n[:, 2] / safe, np.nan),
        "net_sentiment": net, "net_low": bounds[:, 0], "net_high": bounds[:, 1], "change": net - prev_net,
        "change_low": bounds[:, 2], "change_high": bounds[:, 3],
        "change_flagged": (bounds[:, 2] > 0) | (bounds[:, 3] < 0)})
    if entity_columns:
        table["articles"] = out["articles"].fillna(0).to_numpy(dtype=np.int64)
        table["example_negative"] = out["example_negative"].to_numpy(dtype=object)
        table["example_positive"] = out["example_positive"].to_numpy(dtype=object)
    return _typed_table(table.sort_values(CELL, kind="stable").reset_index(drop=True), entity_columns)


def cell_draws(counts: np.ndarray, cell: Sequence[str], *, n_resamples: int, seed: int) -> np.ndarray:
    """`n_resamples` bootstrap nets of one week: multinomial draws of its (negative, neutral, positive) counts,
    from a stream seeded by `seed` and the cell's names, so a cell draws the same whichever night computes it."""
    digest = hashlib.blake2b("\x1f".join(map(str, cell)).encode("utf-8"), digest_size=8).digest()
    rng = np.random.default_rng([seed, int.from_bytes(digest, "little")])
    volume = int(counts.sum())
    resampled = rng.multinomial(volume, counts / volume, size=n_resamples)  # (n_resamples, 3)
    return (resampled[:, 2] - resampled[:, 0]) / volume


def mention_items(mentions: pd.DataFrame, published: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Entity items (key = entity, week of the article's `published_at`) from entity_mentions rows and their
    articles' publish times (`published`: article_id, published_at), and how many mentions had no date (left out:
    the archive day files them under its first day, which would make a spike of that week)."""
    missing = ({"article_id", "sentence_idx", "outlet", "entity", "sentence", "p_negative", "p_positive",
                "sentiment"} - set(mentions)) | ({"article_id", "published_at"} - set(published))
    if missing:
        raise ValueError(f"mentions or published lack columns {sorted(missing)}; got {list(mentions.columns)} and "
                         f"{list(published.columns)}")
    dates = published.drop_duplicates("article_id").set_index("article_id")["published_at"]
    unknown = sorted(set(mentions["article_id"]) - set(dates.index))
    if unknown:
        raise ValueError(f"{len(unknown)} mentioned articles are not in raw_articles' days, e.g. {unknown[:3]}; "
                         "re-materialize entity_mentions after raw_articles")
    week = published_weeks(mentions["article_id"].map(dates).reset_index(drop=True))
    items = mentions.reset_index(drop=True).rename(columns={"entity": "key"}).assign(week=week.to_numpy())
    return items[items["week"].notna()].reset_index(drop=True), int(week.isna().sum())


def topic_items(points: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Topic items (key = the map cluster id as a string, one per article, week of `published_at`) from the outlet
    map's points (article_id, outlet, cluster, sentiment, published_at), and how many undated articles were left
    out. Noise (cluster -1) has no topic."""
    missing = {"article_id", "outlet", "cluster", "sentiment", "published_at"} - set(points.columns)
    if missing:
        raise ValueError(f"points lack columns {sorted(missing)}; got {list(points.columns)}")
    clustered = points[points["cluster"].to_numpy() >= 0].reset_index(drop=True)
    week = published_weeks(clustered["published_at"])
    items = pd.DataFrame({"outlet": clustered["outlet"].astype(str), "key": clustered["cluster"].astype(int).astype(str),
                          "week": week.to_numpy(), "sentiment": clustered["sentiment"]})
    return items[items["week"].notna()].reset_index(drop=True), int(week.isna().sum())


def day_digests(frame: pd.DataFrame, columns: Sequence[str], *, day_column: str) -> dict[str, str]:
    """Day -> a digest of that day's rows over `columns` (order-free: the sum of row hashes), so a table that is
    stored whole (the outlet map) can still say which days' rows changed since they were folded in."""
    if frame.empty:
        return {}
    hashes = pd.util.hash_pandas_object(frame[list(columns)], index=False).to_numpy()
    sums = pd.Series(hashes).groupby(frame[day_column].astype(str).to_numpy()).agg(
        lambda h: int(np.sum(h.to_numpy(), dtype=np.uint64)))
    counts = frame.groupby(frame[day_column].astype(str)).size()
    return {day: f"{counts[day]}-{value:016x}" for day, value in sums.items()}


def weekly_table(items: pd.DataFrame, *, kind: str, n_resamples: int, level: float, seed: int) -> pd.DataFrame:
    """`WEEKLY_COLUMNS` rows, one per (outlet, key, week), sorted by outlet, key and week, from items with
    columns outlet, key, day (YYYY-MM-DD) and sentiment, in one pass (`fold_weekly` from nothing).

    volume is the number of items; the shares and net_sentiment are NaN for an empty week; net_low/net_high
    bound the central `level` share of `n_resamples` bootstrap nets; change is this week's net minus the
    previous week's for the same outlet and key, change_low/change_high its interval, and change_flagged whether
    that interval excludes zero.
    """
    missing = {"outlet", "key", "day", "sentiment"} - set(items.columns)
    if missing:
        raise ValueError(f"items lack columns {sorted(missing)}; got {list(items.columns)}")
    stats = weekly_stats(items.assign(week=week_start(items["day"]) if len(items) else pd.Series(dtype=object)),
                         examples=False)
    empty = weekly_rows(empty_stats(), pd.DataFrame(columns=CELL), kind=kind, n_resamples=n_resamples,
                        level=level, seed=seed, entity_columns=False)
    return fold_weekly(empty, empty_stats(), stats, kind=kind, n_resamples=n_resamples, level=level, seed=seed,
                       entity_columns=False)[0]


def entity_weekly(mentions: pd.DataFrame, *, n_resamples: int, level: float, seed: int) -> pd.DataFrame:
    """Outlet x entity x week rows of `weekly_table` (key = entity) plus ENTITY_COLUMNS: articles (distinct
    article ids) and the week's most negative and most positive sentence (highest p_negative / p_positive), in
    one pass. `mentions` has columns article_id, sentence_idx, outlet, day, entity, sentence, p_negative,
    p_positive, sentiment."""
    missing = ({"article_id", "sentence_idx", "outlet", "day", "entity", "sentence", "p_negative", "p_positive",
                "sentiment"} - set(mentions))
    if missing:
        raise ValueError(f"mentions lack columns {sorted(missing)}; got {list(mentions.columns)}")
    items = mentions.rename(columns={"entity": "key"})
    stats = weekly_stats(items.assign(week=week_start(items["day"]) if len(items) else pd.Series(dtype=object)),
                         examples=True)
    empty = weekly_rows(empty_stats(), pd.DataFrame(columns=CELL), kind="entity", n_resamples=n_resamples,
                        level=level, seed=seed, entity_columns=True)
    return fold_weekly(empty, empty_stats(), stats, kind="entity", n_resamples=n_resamples, level=level, seed=seed,
                       entity_columns=True)[0]


def top_keys(table: pd.DataFrame, *, kind: str, k: int) -> list[str]:
    """The `k` keys of `kind` with the most volume over all outlets and weeks (ties by name)."""
    part = table[table["kind"] == kind]
    totals = part.groupby("key")["volume"].sum().reset_index().sort_values(["volume", "key"], ascending=[False, True])
    return totals["key"].head(k).astype(str).tolist()


def pooled_weekly(table: pd.DataFrame, keys: Sequence[str], *, kind: str) -> pd.DataFrame:
    """Volume and net sentiment per (key, week) over all outlets, for the summary figure."""
    part = table[(table["kind"] == kind) & table["key"].astype(str).isin(list(keys))]
    pooled = part.groupby(["key", "week"])[["volume", "n_negative", "n_positive"]].sum().reset_index()
    pooled["net_sentiment"] = np.where(pooled["volume"] > 0, (pooled["n_positive"] - pooled["n_negative"])
                                       / pooled["volume"].clip(lower=1), np.nan)
    return pooled


def _best_examples(frame: pd.DataFrame) -> pd.DataFrame:
    """Per cell, the row with the highest p, ties to the smallest (article_id, sentence_idx)."""
    ranked = frame.sort_values([*CELL, "p", "article_id", "sentence_idx"],
                               ascending=[True, True, True, False, True, True], kind="stable")
    return ranked.drop_duplicates(CELL)[[*CELL, "sentence", "p", "article_id", "sentence_idx"]]


def _quantiles(draws: np.ndarray, tail: float) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise lower and upper quantiles, NaN for rows with no draws."""
    low, high = np.full(len(draws), np.nan), np.full(len(draws), np.nan)
    ok = ~np.isnan(draws).any(1)
    if ok.any():
        low[ok], high[ok] = np.quantile(draws[ok], [tail, 1 - tail], axis=1)
    return low, high


def _day_numbers(weeks: pd.Series) -> np.ndarray:
    """YYYY-MM-DD strings as days since 1970-01-01."""
    return pd.to_datetime(pd.Series(weeks), format="%Y-%m-%d").to_numpy().astype("datetime64[D]").astype(np.int64)


def _week_strings(days: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(np.asarray(days, dtype=np.int64).astype("datetime64[D]"), unit="D").astype(object)


def _check_settings(n_resamples: int, level: float, seed: int) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1; got {n_resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0 (it seeds numpy's SeedSequence); got {seed}")


_STAT_TYPES = {**{c: object for c in CELL}, **{c: np.int64 for c in (*_COUNTS, "articles")},
               **{f"example_{s}": object for s in ("negative", "positive")},
               **{f"example_{s}_p": np.float64 for s in ("negative", "positive")},
               **{f"example_{s}_article": object for s in ("negative", "positive")},
               **{f"example_{s}_idx": np.float64 for s in ("negative", "positive")}}  # NaN without examples


def empty_stats() -> pd.DataFrame:
    """STAT_COLUMNS with no row (the state before the first night)."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _STAT_TYPES.items()})


def _typed_stats(stats: pd.DataFrame) -> pd.DataFrame:
    out = stats.reindex(columns=list(STAT_COLUMNS))
    for column, dtype in _STAT_TYPES.items():
        out[column] = out[column].astype(dtype) if dtype is not object else out[column].astype(object).where(
            out[column].notna(), None)
    return out.sort_values(CELL, kind="stable").reset_index(drop=True)


_TABLE_TYPES = {"kind": object, "outlet": object, "key": object, "week": object, "volume": np.int64,
                "n_negative": np.int64, "n_neutral": np.int64, "n_positive": np.int64,
                **{c: np.float64 for c in ("negative_share", "positive_share", "net_sentiment", "net_low",
                                           "net_high", "change", "change_low", "change_high")},
                "change_flagged": bool}


def _typed_table(table: pd.DataFrame, entity_columns: bool) -> pd.DataFrame:
    types = {**_TABLE_TYPES, **({"articles": np.int64, "example_negative": object, "example_positive": object}
                                if entity_columns else {})}
    out = table.reindex(columns=list(types))
    for column, dtype in types.items():
        if dtype is object:
            out[column] = out[column].astype(object).where(out[column].notna(), None)
        else:
            out[column] = out[column].astype(dtype)
    return out.reset_index(drop=True)
