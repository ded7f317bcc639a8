"""Week-by-week attention and sentiment per outlet and key (an entity or a topic), with bootstrap intervals.

Each item (an entity mention, or an article in a topic) carries a label; a week's net sentiment is
(positives - negatives) / volume. Its interval resamples the week's items with replacement (a multinomial draw of
the week's label counts, which is the same thing, so per-day counts are all a week needs). A week-on-week change
is the difference of two weeks' nets; its interval comes from the difference of the two weeks' independent
resamples, and the change is flagged only when that interval excludes zero. Weeks without items between an
outlet's first and last week for a key are kept with volume 0, so attention drops show; their net and any change
into or out of them are empty (NaN) and never flagged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

WEEKLY_COLUMNS: tuple[str, ...] = (
    "kind", "outlet", "key", "week", "volume", "n_negative", "n_neutral", "n_positive", "negative_share",
    "positive_share", "net_sentiment", "net_low", "net_high", "change", "change_low", "change_high",
    "change_flagged")
_COUNTS = ("n_negative", "n_neutral", "n_positive")


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


def weekly_counts(items: pd.DataFrame) -> pd.DataFrame:
    """Label counts per (outlet, key, week) from items with columns outlet, key, day, sentiment, with the empty
    weeks between each (outlet, key)'s first and last week filled in as zeros."""
    missing = {"outlet", "key", "day", "sentiment"} - set(items.columns)
    if missing:
        raise ValueError(f"items lack columns {sorted(missing)}; got {list(items.columns)}")
    unknown = set(items["sentiment"]) - {"negative", "neutral", "positive"}
    if unknown:
        raise ValueError(f"unknown sentiment labels {sorted(unknown)}; expected negative, neutral, positive")
    if items.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ("outlet", "key", "week", *_COUNTS)})
    frame = items.assign(week=week_start(items["day"]))
    counts = (pd.crosstab([frame["outlet"], frame["key"], frame["week"]], frame["sentiment"])
              .reindex(columns=["negative", "neutral", "positive"], fill_value=0))
    counts.columns = list(_COUNTS)
    counts = counts.reset_index()
    filled = []
    for (outlet, key), part in counts.groupby(["outlet", "key"], sort=True):
        weeks = pd.date_range(part["week"].min(), part["week"].max(), freq="7D").strftime("%Y-%m-%d")
        full = part.set_index("week")[list(_COUNTS)].reindex(weeks, fill_value=0).rename_axis("week").reset_index()
        filled.append(full.assign(outlet=outlet, key=key))
    return pd.concat(filled, ignore_index=True)[["outlet", "key", "week", *_COUNTS]]


def weekly_table(items: pd.DataFrame, *, kind: str, n_resamples: int, level: float, seed: int) -> pd.DataFrame:
    """`WEEKLY_COLUMNS` rows, one per (outlet, key, week), sorted by outlet, key and week.

    volume is the number of items; the shares and net_sentiment are NaN for an empty week; net_low/net_high
    bound the central `level` share of `n_resamples` bootstrap nets; change is this week's net minus the
    previous week's for the same outlet and key, change_low/change_high its interval, and change_flagged whether
    that interval excludes zero.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1; got {n_resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level}")
    counts = weekly_counts(items)
    if counts.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in WEEKLY_COLUMNS})
    rng = np.random.default_rng(seed)
    n = counts[list(_COUNTS)].to_numpy(dtype=np.int64)  # (rows, 3)
    volume = n.sum(1)
    draws = np.full((len(counts), n_resamples), np.nan)  # bootstrap nets, one row per week
    for i in np.flatnonzero(volume):
        resampled = rng.multinomial(volume[i], n[i] / volume[i], size=n_resamples)  # (n_resamples, 3)
        draws[i] = (resampled[:, 2] - resampled[:, 0]) / volume[i]
    tail = (1 - level) / 2
    out = counts.assign(kind=kind, volume=volume)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["negative_share"] = np.where(volume > 0, n[:, 0] / np.maximum(volume, 1), np.nan)
        out["positive_share"] = np.where(volume > 0, n[:, 2] / np.maximum(volume, 1), np.nan)
    out["net_sentiment"] = np.where(volume > 0, (n[:, 2] - n[:, 0]) / np.maximum(volume, 1), np.nan)
    out["net_low"], out["net_high"] = _quantiles(draws, tail)
    # The previous row is the previous calendar week: weekly_counts filled every gap within an (outlet, key).
    same = (out["outlet"].eq(out["outlet"].shift()) & out["key"].eq(out["key"].shift())).to_numpy()
    previous = np.vstack([np.full((1, n_resamples), np.nan), draws[:-1]])
    previous[~same] = np.nan
    out["change"] = out["net_sentiment"] - np.where(same, out["net_sentiment"].shift(), np.nan)
    out["change_low"], out["change_high"] = _quantiles(draws - previous, tail)
    out["change_flagged"] = ((out["change_low"] > 0) | (out["change_high"] < 0)).astype(bool)
    return out[list(WEEKLY_COLUMNS)].reset_index(drop=True)


def _quantiles(draws: np.ndarray, tail: float) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise lower and upper quantiles, NaN for rows with no draws."""
    low, high = np.full(len(draws), np.nan), np.full(len(draws), np.nan)
    ok = ~np.isnan(draws).any(1)
    if ok.any():
        low[ok], high[ok] = np.quantile(draws[ok], [tail, 1 - tail], axis=1)
    return low, high


def entity_weekly(mentions: pd.DataFrame, *, n_resamples: int, level: float, seed: int) -> pd.DataFrame:
    """Outlet x entity x week rows of `weekly_table` (key = entity) plus articles (distinct article ids), and the
    week's most negative and most positive sentence (highest p_negative / p_positive) as examples.

    `mentions` has columns article_id, outlet, day, entity, sentence, p_negative, p_positive, sentiment.
    """
    missing = {"article_id", "outlet", "day", "entity", "sentence", "p_negative", "p_positive", "sentiment"} - set(mentions)
    if missing:
        raise ValueError(f"mentions lack columns {sorted(missing)}; got {list(mentions.columns)}")
    table = weekly_table(mentions.rename(columns={"entity": "key"}), kind="entity", n_resamples=n_resamples,
                         level=level, seed=seed)
    extra = ("articles", "example_negative", "example_positive")
    if table.empty:
        return table.assign(**{c: pd.Series(dtype=object) for c in extra})
    frame = mentions.assign(week=week_start(mentions["day"]))
    groups = frame.groupby(["outlet", "entity", "week"], sort=False)
    examples = pd.DataFrame({
        "articles": groups["article_id"].nunique(),
        "example_negative": groups.apply(lambda g: g.loc[g["p_negative"].idxmax(), "sentence"], include_groups=False),
        "example_positive": groups.apply(lambda g: g.loc[g["p_positive"].idxmax(), "sentence"], include_groups=False),
    }).rename_axis(["outlet", "key", "week"]).reset_index()
    table = table.merge(examples, on=["outlet", "key", "week"], how="left")
    table["articles"] = table["articles"].fillna(0).astype(np.int64)
    return table


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
