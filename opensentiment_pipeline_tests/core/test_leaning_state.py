"""The kept axis: a night adds its day's sums and equals a pass over every day with the same fit; a refit resets."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t

from opensentiment_pipeline.core.analysis import leaning
from opensentiment_pipeline.core.analysis.leaning import fit as fit_
from opensentiment_pipeline.core.analysis.leaning import state, stats

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
POSITIONS = {"left a": -1.0, "left b": -0.7, "right a": 1.0, "right b": 0.7, "unrated": 0.4}
SIDE = {"left a": "left", "left b": "left", "right a": "right", "right b": "right"}
SETTINGS = {"reference": None, "n_folds": 2, "regularization": 1.0, "n_axes": 2, "min_articles": 3, "seed": 0,
            "topic_clusters": 0, "outlet_directions": 0, "standardize": True, "lexical_weight": 0.0,
            "tfidf_regularization": 0.0, "topic_free_share": 0.0, "remove_format": False, "strip_min_share": 0.5,
            "strip_min_count": 2, "keyword_top_k": 3}


class Days:
    """A stand-in for StoredDays over {day: frame}, recording every day it reads."""

    def __init__(self, frames: dict[str, pd.DataFrame]):
        self.frames, self.log, self.version = dict(frames), [], {d: 0 for d in frames}

    def fingerprints(self):
        return {d: f"v{self.version[d]}" for d in sorted(self.frames)}

    def read(self, days, columns=None, *, optional=()):
        self.log.extend(days)
        frame = pd.concat([self.frames[d] for d in days], ignore_index=True)
        frame = frame.assign(**{c: None for c in optional if c not in frame.columns})
        return frame[list(columns)] if columns else frame


def _archive(*, rated: bool, per_day: int = 6, seed: int = 0, version: str = "v1", unlabelled_day: str | None = None,
             topics: bool = True):
    rng = np.random.default_rng(seed)
    raw, embedded = {}, {}
    for d, day in enumerate(DAYS):
        outlets = np.repeat(list(POSITIONS), per_day)
        vectors = np.column_stack([np.repeat(list(POSITIONS.values()), per_day) + rng.normal(0, 0.4, len(outlets)),
                                   rng.normal(0, 1, (len(outlets), 5))])
        ids = [f"{day}-{i}" for i in range(len(outlets))]
        raw[day] = pd.DataFrame({"article_id": ids, "outlet": outlets, "title": [f"title {i}" for i in ids],
                                 "text": [f"{o.split()[0]} words {i}" for o, i in zip(outlets, ids)],
                                 "leaning": [SIDE.get(o) if rated and day != unlabelled_day else None
                                             for o in outlets], "partition_day": day,
                                 "topic": [f"t{i % 2}" if topics else None for i in range(len(ids))]})
        embedded[day] = pd.DataFrame({"article_id": ids, "embedding": list(vectors), "model_version": version,
                                      "partition_day": day})
    return raw, embedded


def _update(state_dir, raw, embedded, **overrides):
    options = {"fit_settings": SETTINGS, "max_fit_articles": 10_000, "refit_every_days": 30, "rebuild": False,
               "refit": False, "days_per_batch": 2, "n_bootstrap": 50, "min_topic_articles": 2}
    return state.update_axis(state_dir, raw, embedded, **{**options, **overrides})


def _first(frames, n):
    return Days({d: frames[d] for d in DAYS[:n]})


def _add_day(days: Days, frames, day):
    days.frames[day] = frames[day]
    days.version[day] = 0
    days.log.clear()


@pytest.mark.parametrize(("rated", "archive", "settings"), [
    (True, {}, {}),
    (True, {}, {"lexical_weight": 0.5, "tfidf_regularization": 10.0}),
    (True, {"per_day": 15, "topics": False}, {"topic_clusters": 3}),  # k-means topics for the per-topic view
    (False, {}, {}),
    (False, {}, {"remove_format": True}),
], ids=["probe", "probe_and_words", "kmeans_topics", "principal_axes", "principal_axes_without_format"])
def test_nights_one_day_at_a_time_equal_a_rebuild_over_every_day_with_the_same_fit(tmp_path, rated, archive,
                                                                                  settings):
    raw_frames, embedded_frames = _archive(rated=rated, **archive)
    settings = {**SETTINGS, **settings}
    raw, embedded = _first(raw_frames, 2), _first(embedded_frames, 2)
    first = _update(tmp_path / "night", raw, embedded, fit_settings=settings)
    assert first.mode == "refit" and first.reason == "no stored fit"
    shutil.copytree(tmp_path / "night", tmp_path / "rebuild")
    for day in DAYS[2:]:
        _add_day(raw, raw_frames, day)
        _add_day(embedded, embedded_frames, day)
        night = _update(tmp_path / "night", raw, embedded, fit_settings=settings)
        assert (night.mode, night.days_read, raw.log, embedded.log) == ("night", [day], [day], [day])
        assert night.fit["fit_id"] == first.fit["fit_id"]
    rebuilt = _update(tmp_path / "rebuild", raw, embedded, fit_settings=settings, rebuild=True)
    assert rebuilt.mode == "rebuild" and rebuilt.fit["fit_id"] == first.fit["fit_id"]
    pd.testing.assert_frame_equal(night.result.outlets, rebuilt.result.outlets, check_exact=False, rtol=0, atol=1e-9)
    assert night.result.outlets["n_articles"].sum() == len(DAYS) * len(POSITIONS) * archive.get("per_day", 6)
    if rated:
        expected = "3 k-means topics" if "topic_clusters" in _changed_settings(settings) else "the sources' topic column"
        assert night.topic_source.startswith(expected) and len(night.cells) >= len(POSITIONS)
        pd.testing.assert_frame_equal(night.cells, rebuilt.cells, check_exact=False, rtol=0, atol=1e-9)
        pd.testing.assert_frame_equal(night.by_topic, rebuilt.by_topic, check_exact=False, rtol=0, atol=1e-9)
    else:
        pd.testing.assert_frame_equal(night.result.axes, rebuilt.result.axes)
        pd.testing.assert_frame_equal(night.result.positions, rebuilt.result.positions, check_exact=False,
                                      rtol=0, atol=1e-9)


def _changed_settings(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if v != SETTINGS.get(k)}


def test_the_axis_fitted_on_every_article_scores_outlets_as_place_outlets_does(tmp_path):
    # A day without ratings: its articles take their outlet's rating from the other days, as in place_outlets.
    raw_frames, embedded_frames = _archive(rated=True, unlabelled_day=DAYS[1])
    update = _update(tmp_path, Days(raw_frames), Days(embedded_frames))
    articles = pd.concat(raw_frames.values(), ignore_index=True)
    vectors = np.stack(pd.concat(embedded_frames.values(), ignore_index=True)["embedding"].to_numpy())
    placed = leaning.place_outlets(articles, vectors, covariates=None, texts=None, n_bootstrap=50,
                                   **{k: v for k, v in SETTINGS.items() if k not in (
                                       "remove_format", "strip_min_share", "strip_min_count", "keyword_top_k")})
    ours, theirs = update.result.outlets.set_index("outlet"), placed.outlets.set_index("outlet")
    for column in ("raw_score", "score", "n_articles", "fitted_on", "reference_leaning", "label"):
        pd.testing.assert_series_equal(ours[column], theirs[column], check_exact=False, atol=1e-9)
    assert update.result.metrics["outlet_cv_spearman"] == pytest.approx(placed.metrics["outlet_cv_spearman"])


def test_a_refit_resets_the_fit_and_sums_to_those_of_a_first_run(tmp_path):
    raw_frames, embedded_frames = _archive(rated=True)
    raw, embedded = _first(raw_frames, 3), _first(embedded_frames, 3)
    first = _update(tmp_path / "kept", raw, embedded)
    _add_day(raw, raw_frames, DAYS[3])
    _add_day(embedded, embedded_frames, DAYS[3])
    refitted = _update(tmp_path / "kept", raw, embedded, refit=True)
    fresh = _update(tmp_path / "fresh", raw, embedded)
    assert (refitted.mode, refitted.reason, refitted.days_read) == ("refit", "refit: true", DAYS)
    assert refitted.fit["fit_id"] != first.fit["fit_id"] and refitted.fit["fit_id"] == fresh.fit["fit_id"]
    pd.testing.assert_frame_equal(refitted.result.outlets, fresh.result.outlets)


def test_a_due_fit_other_settings_or_another_encoder_version_refit(tmp_path):
    raw_frames, embedded_frames = _archive(rated=True)
    raw, embedded = _first(raw_frames, 3), _first(embedded_frames, 3)
    _update(tmp_path, raw, embedded, refit_every_days=1)
    _add_day(raw, raw_frames, DAYS[3])
    _add_day(embedded, embedded_frames, DAYS[3])
    assert _update(tmp_path, raw, embedded, refit_every_days=1).reason.startswith("refit due")
    other = _update(tmp_path, raw, embedded, fit_settings={**SETTINGS, "regularization": 0.5})
    assert other.reason == "settings changed since the fit: ['regularization']"
    embedded.frames[DAYS[3]] = embedded_frames[DAYS[3]].assign(model_version="v1")
    embedded.version[DAYS[3]] += 1  # re-embedded: same version, a changed day re-read alone
    changed = _update(tmp_path, raw, embedded, fit_settings={**SETTINGS, "regularization": 0.5})
    assert (changed.mode, changed.days_read) == ("night", [DAYS[3]])
    embedded.frames[DAYS[3]] = embedded_frames[DAYS[3]].assign(model_version="v2")
    embedded.version[DAYS[3]] += 1
    with pytest.raises(ValueError, match="adapter versions"):
        _update(tmp_path, raw, embedded, fit_settings={**SETTINGS, "regularization": 0.5})


def test_fit_sample_gives_each_outlet_an_equal_quota_and_keeps_small_ones_whole():
    outlets = pd.Series(["big"] * 10 + ["mid"] * 5 + ["small"] * 2)
    picked = fit_.fit_sample(outlets, max_fit_articles=10, seed=0)
    assert outlets.iloc[picked].value_counts().to_dict() == {"big": 4, "mid": 4, "small": 2}
    assert list(fit_.fit_sample(outlets, max_fit_articles=17, seed=0)) == list(range(17))
    with pytest.raises(ValueError, match="max_fit_articles must be >= 1"):
        fit_.fit_sample(outlets, max_fit_articles=0, seed=0)


def test_stats_intervals_are_t_intervals_of_the_outlet_mean():
    scored = pd.DataFrame({"outlet": ["a", "a", "a", "b"], "axis1": [0.1, 0.2, 0.6, 0.5], "reference": np.nan,
                           "topic": None})
    sums, _ = stats.day_stats("2026-11-01", scored)
    assert sums[["outlet", "n", "sum"]].to_dict("list") == {"outlet": ["a", "b"], "n": [3, 1], "sum": [0.9, 0.5]}
    _, mean, low, high = stats._moments(sums)
    half = t.ppf(0.975, 2) * np.std([0.1, 0.2, 0.6], ddof=1) / np.sqrt(3)
    assert (mean[0], low[0], high[0]) == pytest.approx((0.3, 0.3 - half, 0.3 + half))
    assert (low[1], high[1]) == (-1.0, 1.0)


def test_a_new_day_that_read_another_text_window_refits_and_is_refused_with_the_stale_days(tmp_path):
    raw_frames, embedded_frames = _archive(rated=True)
    embedded_frames = {d: f.assign(text_window="title + lead") for d, f in embedded_frames.items()}
    raw, embedded = _first(raw_frames, 3), _first(embedded_frames, 3)
    assert _update(tmp_path, raw, embedded).fit["text_window"] == "title + lead"
    _add_day(raw, raw_frames, DAYS[3])
    _add_day(embedded, {DAYS[3]: embedded_frames[DAYS[3]].assign(text_window="whole text")}, DAYS[3])
    with pytest.raises(ValueError, match="mixes vectors that read different text"):
        _update(tmp_path, raw, embedded)


def test_a_new_day_is_stripped_of_the_boilerplate_its_outlet_showed_in_the_fit_sample():
    from opensentiment_pipeline.core.ingest import boilerplate

    footer = "The views here are the columnist's alone."
    sample = pd.DataFrame({"outlet": ["x"] * 3 + ["y"] * 3, "title": "t",
                           "text": [f"story {i} happened.\n{footer}" for i in range(3)] + ["other news."] * 3})
    recurring = boilerplate.recurring_paragraphs(sample["text"], sample["outlet"], min_share=0.5, min_count=2)
    fit = fit_.AxisFit(method="probe", reference=None, recurring=recurring, strip=(0.5, 2))
    new_day = pd.DataFrame({"outlet": ["x", "newcomer"], "title": "t", "text": f"fresh story.\n{footer}"})
    # One article of x on its own recurs nowhere: the sample's rule strips it; an outlet the sample never saw
    # keeps the line.
    assert fit.texts(new_day) == ["t. fresh story.", f"t. fresh story.\n{footer}"]
