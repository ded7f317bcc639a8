"""The axis kept between runs (`update_axis`): a night scores its new days with the stored fit and adds their
sums; a refit (first run, `refit`, other settings, another encoder version, or a fit `refit_every_days` older
than the newest day) fits on a bounded sample and streams every stored day in batches to rebuild the sums.

The state folder holds `fit.pkl` (the `AxisFit`), `fit.json` (which fit: id, the newest day it saw, its
settings, encoder version, metrics), `stats.parquet` / `topic_stats.parquet` (per-day sums, `stats.day_stats`)
and the day ledger `days.json`; it is replaced as a whole, so a failed run leaves the previous one. Days are
read through handles with `fingerprints()` and `read(days, columns, optional=...)` (the Dagster layer's
`StoredDays`), `days_per_batch` days at a time: an ordinary night reads its new days and no other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.analysis.leaning.fit import (
    AxisFit,
    fit_axis,
    fit_sample,
)
from opensentiment_pipeline.core.analysis.leaning.outlets import LeaningResult
from opensentiment_pipeline.core.analysis.leaning.report import join_articles
from opensentiment_pipeline.core.analysis.leaning.stats import (
    OUTLET_STATS,
    TOPIC_STATS,
    day_stats,
    leaning_tables,
)

RAW, EMBEDDED = "raw_articles", "article_embeddings"
DAY = "partition_day"
WINDOW = "text_window"  # the span of text the vectors read (absent from days embedded before it was recorded)
VECTOR_COLUMNS = ["article_id", "embedding", "model_version", WINDOW, DAY]


@dataclass(frozen=True)
class AxisUpdate:
    """What a run made (`result`, the per-topic tables) and how: `mode` "refit" / "rebuild" / "night", why,
    which fit scored every row (`fit`: its fit.json), and the stored days it read."""

    result: LeaningResult
    by_topic: pd.DataFrame | None
    cells: pd.DataFrame | None
    topic_source: str | None
    mode: str
    reason: str
    fit: dict
    days_read: list[str]


def update_axis(state_dir: str | os.PathLike, raw_articles, article_embeddings, *, fit_settings: dict,
                max_fit_articles: int, refit_every_days: int, rebuild: bool, refit: bool, days_per_batch: int,
                n_bootstrap: int, min_topic_articles: int) -> AxisUpdate:
    """Bring the axis in `state_dir` up to date with the stored days and return its tables.

    Args:
        raw_articles, article_embeddings: day handles (see the module docstring).
        fit_settings: every keyword of `fit_axis`; a change refits.
        max_fit_articles: the fit's sample (`fit_sample`); below it every article.
        refit_every_days: refit once the newest stored day is this many days past the fit's newest day.
        rebuild: rebuild the sums from every stored day with the stored fit (refit only when one is due).
        refit: refit now.
        days_per_batch: days read at a time on a pass over every stored day.
        n_bootstrap, min_topic_articles: table settings (`leaning_tables`), read from the sums each run.
    """
    from opensentiment_pipeline.core.day_ledger import (
        changes,
        read_ledger,
        write_ledger,
    )

    state_dir = Path(state_dir)
    prints = {RAW: raw_articles.fingerprints(), EMBEDDED: article_embeddings.fingerprints()}
    days = sorted(prints[EMBEDDED])
    if not days:
        raise ValueError("article_embeddings has no stored day: materialize it first")
    info = _read_info(state_dir)
    settings = json.loads(json.dumps(fit_settings, sort_keys=True))
    reason = _refit_reason(info, settings, days, refit=refit, refit_every_days=refit_every_days)
    mode, read, stats, topic_stats, fit = "refit", list(days), None, None, None
    if reason is None:
        fit = pickle.loads((state_dir / "fit.pkl").read_bytes())
        ledger = read_ledger(state_dir)
        raw_changes, embedded_changes = (changes(prints[k], ledger.get(k, {})) for k in (RAW, EMBEDDED))
        touched = set(raw_changes.new) | set(raw_changes.changed) | set(embedded_changes.new) | set(embedded_changes.changed)
        mode, reason = ("rebuild", "rebuild: true") if rebuild else ("night", "only new or changed days")
        read = list(days) if rebuild else sorted(touched & set(days))
        stats, topic_stats = (pd.read_parquet(state_dir / f) for f in ("stats.parquet", "topic_stats.parquet"))
        keep = set(days) - set(read) if not rebuild else set()
        stats, topic_stats = stats[stats["day"].isin(keep)], topic_stats[topic_stats["day"].isin(keep)]
    scored = None if fit is None else _score_days(fit, info, raw_articles, article_embeddings, read, days_per_batch)
    if scored is None:  # a refit, or a read day made by another encoder version than the fit's
        if fit is not None:
            reason = (f"days among {read[:3]} were embedded by another encoder version or text window than the "
                      f"fit's ({info['model_version']}, {info.get(WINDOW)})")
        mode, read = "refit", list(days)
        fit, info = _refit(raw_articles, article_embeddings, days, settings, max_fit_articles=max_fit_articles,
                           days_per_batch=days_per_batch)
        stats = topic_stats = None
        scored = _score_days(fit, info, raw_articles, article_embeddings, days, days_per_batch)
    stats = pd.concat([s for s in (stats, scored[0]) if s is not None and len(s)] or [scored[0]], ignore_index=True)
    topic_stats = pd.concat([s for s in (topic_stats, scored[1]) if s is not None and len(s)] or [scored[1]],
                            ignore_index=True)
    result, by_topic, cells = leaning_tables(stats, topic_stats, fit, min_articles=settings["min_articles"],
                                             n_bootstrap=n_bootstrap, seed=settings["seed"],
                                             min_topic_articles=min_topic_articles)
    _write_state(state_dir, fit, info, stats, topic_stats, prints, new_fit=mode == "refit", write_ledger=write_ledger)
    source = {"column": "the sources' topic column", "kmeans": f"{len(fit.topic_keywords)} k-means topics of the "
              "vectors, named by their c-TF-IDF keywords"}.get(fit.topic_source)
    return AxisUpdate(result=result, by_topic=by_topic, cells=cells, topic_source=source, mode=mode, reason=reason,
                      fit=info, days_read=read)


def _read_info(state_dir: Path) -> dict | None:
    path = state_dir / "fit.json"
    if not path.exists() or not (state_dir / "fit.pkl").exists():
        return None
    return json.loads(path.read_text())


def _refit_reason(info: dict | None, settings: dict, days: list[str], *, refit: bool, refit_every_days: int
                  ) -> str | None:
    if info is None:
        return "no stored fit"
    if refit:
        return "refit: true"
    if info["settings"] != settings:
        changed = sorted(k for k in set(settings) | set(info["settings"]) if settings.get(k) != info["settings"].get(k))
        return f"settings changed since the fit: {changed}"
    age = (dt.date.fromisoformat(days[-1]) - dt.date.fromisoformat(info["fitted_through"])).days
    if age >= refit_every_days:
        return f"refit due: the newest day {days[-1]} is {age} days past the fit's {info['fitted_through']}"
    return None


def _refit(raw_articles, article_embeddings, days: list[str], settings: dict, *, max_fit_articles: int,
           days_per_batch: int) -> tuple[AxisFit, dict]:
    """Fit on a sample stratified by outlet: one pass reads ids and outlets, one the sample's rows."""
    from opensentiment_pipeline.core.vectors import encoder_versions

    index = []
    for day in range(0, len(days), days_per_batch):
        batch = days[day:day + days_per_batch]
        raw = raw_articles.read(batch, ["article_id", "outlet"])
        embedded = article_embeddings.read(batch, ["article_id", "model_version", WINDOW, DAY], optional=[WINDOW])
        index.append(embedded.merge(raw, on="article_id", how="left", validate="one_to_one"))
    index = pd.concat(index, ignore_index=True)
    version = encoder_versions.check_one_adapter(index, asset="outlet_leaning", day_column=DAY)
    picked = set(index["article_id"].iloc[fit_sample(index["outlet"].fillna(""), max_fit_articles=max_fit_articles,
                                                     seed=settings["seed"])])
    articles, vectors = [], []
    for day in range(0, len(days), days_per_batch):
        batch = days[day:day + days_per_batch]
        raw = raw_articles.read(batch)
        embedded = article_embeddings.read(batch, VECTOR_COLUMNS, optional=[WINDOW])
        embedded = embedded[embedded["article_id"].isin(picked)]
        articles.append(join_articles(raw, embedded["article_id"].tolist()))
        vectors.append(_unit(embedded))
    fit = fit_axis(pd.concat(articles, ignore_index=True), np.concatenate(vectors), **settings)
    info = {"fit_id": hashlib.sha1(json.dumps([settings, version, days, len(picked)]).encode()).hexdigest()[:12],
            "fitted_through": days[-1], "fitted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "n_fit_articles": len(picked), "n_stored_articles": len(index), "model_version": version,
            WINDOW: _window(index),
            "settings": settings, "method": fit.method,
            "metrics": {k: float(v) for k, v in fit.metrics.items()}}
    return fit, info


def _score_days(fit: AxisFit, info: dict, raw_articles, article_embeddings, days: list[str], days_per_batch: int
                ) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Per-day sums of `days` scored by `fit`, one day at a time (a day scores alike whatever else is read with
    it); None when a day was embedded by another encoder version or text window than the fit's."""
    outlet_rows, topic_rows = [pd.DataFrame(columns=list(OUTLET_STATS))], [pd.DataFrame(columns=list(TOPIC_STATS))]
    for day in range(0, len(days), days_per_batch):
        batch = days[day:day + days_per_batch]
        raw = raw_articles.read(batch)
        embedded = article_embeddings.read(batch, VECTOR_COLUMNS, optional=[WINDOW])
        if len(embedded) and (set(embedded["model_version"].astype(str)) != {info["model_version"]}
                              or _window(embedded) != info.get(WINDOW)):
            return None
        for day, part in embedded.groupby(DAY, sort=True):
            articles = join_articles(raw[raw[DAY] == day] if DAY in raw else raw, part["article_id"].tolist())
            outlets, topics = day_stats(str(day), fit.score(articles, _unit(part)))
            outlet_rows.append(outlets)
            topic_rows.append(topics)
    return (pd.concat([r for r in outlet_rows if len(r)] or outlet_rows[:1], ignore_index=True),
            pd.concat([r for r in topic_rows if len(r)] or topic_rows[:1], ignore_index=True))


def _window(embedded: pd.DataFrame) -> str | None:
    """The one text window of `embedded` (None: not recorded), as `check_one_text_window` reads it."""
    from opensentiment_pipeline.core.vectors.encoder_versions import UNRECORDED_WINDOW

    windows = set(embedded[WINDOW].astype(object).where(embedded[WINDOW].notna(), UNRECORDED_WINDOW))
    return None if windows <= {UNRECORDED_WINDOW} else "; ".join(sorted(windows))


def _unit(embedded: pd.DataFrame) -> np.ndarray:
    from opensentiment_pipeline.core.vectors import encoding

    matrix = encoding.frame_to_matrix(embedded).astype(np.float64)
    if not np.isfinite(matrix).all():
        raise ValueError(f"article_embeddings holds NaN or inf in {int((~np.isfinite(matrix)).any(axis=1).sum())} "
                         "rows: re-embed their days")
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def _write_state(state_dir: Path, fit: AxisFit, info: dict, stats: pd.DataFrame, topic_stats: pd.DataFrame,
                 prints: dict, *, new_fit: bool, write_ledger) -> None:
    from opensentiment_pipeline.core.vectors.search import replacing_folder

    with replacing_folder(state_dir) as tmp:
        if new_fit:
            (tmp / "fit.pkl").write_bytes(pickle.dumps(fit))
        else:  # unchanged: linked, not rewritten
            try:
                os.link(state_dir / "fit.pkl", tmp / "fit.pkl")
            except OSError:
                shutil.copy2(state_dir / "fit.pkl", tmp / "fit.pkl")
        (tmp / "fit.json").write_text(json.dumps(info, indent=1, sort_keys=True))
        stats.to_parquet(tmp / "stats.parquet", index=False)
        topic_stats.astype({"topic": str}).to_parquet(tmp / "topic_stats.parquet", index=False)
        write_ledger(tmp, prints)
