"""Outlet leaning: the probe orders unrated outlets, outlet-disjoint validation, the principal-axes fallback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from opensentiment_pipeline.core import plots
from opensentiment_pipeline.core.analysis import leaning

SETTINGS = dict(n_folds=5, regularization=1.0, n_axes=3, min_articles=2, n_bootstrap=200, seed=0)
# place_outlets takes every result-changing setting without a default; these tests read the plain embedding
# probe unless they say otherwise.
PLAIN = dict(topic_clusters=0, covariates=None, outlet_directions=0, standardize=False, texts=None,
             lexical_weight=0.0, tfidf_regularization=10.0, topic_free_share=0.0)


def place(articles, vectors, **settings):
    return leaning.place_outlets(articles, vectors, **{**PLAIN, **settings})


def _articles(positions: dict[str, float], *, per_outlet: int = 40, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Articles whose first dimension sits at the outlet's position (plus noise); 7 more noise dimensions."""
    rng = np.random.default_rng(seed)
    outlets = np.repeat(list(positions), per_outlet)
    lean = np.repeat(list(positions.values()), per_outlet) + rng.normal(0.0, 0.3, len(outlets))
    vectors = np.column_stack([lean, rng.normal(0.0, 1.0, (len(outlets), 7))])
    return pd.DataFrame({"outlet": outlets}), vectors


RATED = {"left a": -1.0, "left b": -0.9, "center a": 0.0, "center b": 0.1, "right a": 0.9, "right b": 1.0}
UNRATED = {"unrated west": -0.6, "unrated middle": 0.05, "unrated east": 0.6}
REFERENCE = {"Left-A": "left", "left b": "left", "Center A": "center", "center_b": "center",
             "right a": "right", "RIGHT B": "right"}  # names as a CSV might spell them


def test_probe_orders_unrated_outlets_and_validates_outlet_disjoint():
    articles, vectors = _articles({**RATED, **UNRATED})
    result = place(articles, vectors, reference=REFERENCE, **SETTINGS)
    table = result.outlets.set_index("outlet")
    assert result.method == "probe"
    assert list(result.outlets.columns) == list(leaning.LEANING_COLUMNS)
    unrated = table.loc[list(UNRATED), "score"]
    assert unrated.sort_values().index.tolist() == ["unrated west", "unrated middle", "unrated east"]
    assert table.loc["unrated west", "score"] < 0 < table.loc["unrated east", "score"]
    assert not table.loc[list(UNRATED), "fitted_on"].any() and table.loc[list(RATED), "fitted_on"].all()
    assert table.loc[list(UNRATED), "reference_leaning"].isna().all()
    assert table.loc["left a", "reference_leaning"] == "left"
    # Held-out scores put both left outlets below both center outlets below both right outlets: the best
    # Spearman the tied references (-1, -1, 0, 0, 1, 1) allow.
    held_out = table.loc[list(RATED), "score"].sort_values()
    assert set(held_out.index[:2]) == {"left a", "left b"}
    assert set(held_out.index[2:4]) == {"center a", "center b"} and set(held_out.index[4:]) == {"right a", "right b"}
    best = spearmanr([1, 2, 3, 4, 5, 6], [-1, -1, 0, 0, 1, 1]).statistic
    assert result.metrics["outlet_cv_spearman"] == pytest.approx(best)
    assert result.metrics["outlet_cv_macro_f1"] > 0.8
    assert result.metrics["n_folds"] == 5 and result.metrics["n_rated_outlets"] == 6
    assert ((table["score_low"] <= table["score"]) & (table["score"] <= table["score_high"])).all()
    assert table["score"].between(-1, 1).all()


def test_cv_spearman_is_one_when_mixed_article_labels_give_distinct_outlet_references():
    # Each outlet's articles carry their own labels (as Article-Bias-Prediction's `leaning` column does);
    # the mix gives outlet references -1, -0.6, -0.2, 0.2, 0.6, 1.
    mixes = {"o1": {"left": 10}, "o2": {"left": 6, "center": 4}, "o3": {"left": 2, "center": 8},
             "o4": {"center": 8, "right": 2}, "o5": {"center": 4, "right": 6}, "o6": {"right": 10}}
    positions = {o: sum(leaning.LEANING_SCORE[k] * n for k, n in mix.items()) / 10 for o, mix in mixes.items()}
    articles, vectors = _articles(positions, per_outlet=40)
    articles["leaning"] = [label for mix in mixes.values() for label, n in mix.items() for _ in range(4 * n)]
    result = place(articles, vectors, reference=None, **SETTINGS)
    assert result.metrics["outlet_cv_spearman"] == pytest.approx(1.0)
    assert result.outlets.set_index("outlet").loc["o2", "reference_leaning"] == "left"  # mean -0.6 -> nearest


def test_unrated_articles_of_a_rated_outlet_take_its_label_and_are_scored_held_out():
    articles, vectors = _articles({"a": -1.0, "b": -0.9, "c": 0.9, "d": 1.0}, per_outlet=10)
    articles["leaning"] = ["left"] * 5 + [None] * 5 + ["left"] * 10 + ["right"] * 5 + [""] * 5 + ["right"] * 10
    result = place(articles, vectors, reference=None, **SETTINGS)
    assert result.outlets["fitted_on"].all()
    assert result.outlets["reference_leaning"].tolist() == ["left", "left", "right", "right"]


def test_without_references_the_principal_axis_ends_are_the_extreme_outlets():
    positions = {"p1": -1.0, "p2": -0.7, "p3": -0.3, "p4": 0.3, "p5": 0.7, "p6": 1.0}
    articles, vectors = _articles(positions, per_outlet=60)
    result = place(articles, vectors, reference=None, **SETTINGS)
    assert result.method == "principal_axes"
    first = result.axes.iloc[0]
    assert first["explained_variance_ratio"] > 0.5
    ends = {tuple(first["low_end"]), tuple(first["high_end"])}
    assert ends == {("p1", "p2", "p3"), ("p6", "p5", "p4")}  # the axis's sign is arbitrary
    table = result.outlets.set_index("outlet")
    assert table["score"].abs().max() == pytest.approx(1.0, abs=0.05)
    order = table["score"].sort_values().index.tolist()
    assert order in (list(positions), list(positions)[::-1])
    assert not table["fitted_on"].any() and table["reference_leaning"].isna().all()
    assert list(result.axes.columns) == list(leaning.AXIS_COLUMNS) and len(result.axes) == 3
    assert result.metrics["explained_variance_ratio_axis1"] == first["explained_variance_ratio"]


def test_an_outlet_with_one_article_spans_the_whole_scale_and_does_not_define_axes():
    articles, vectors = _articles({"p1": -1.0, "p2": 0.0, "p3": 1.0}, per_outlet=20)
    lone = pd.DataFrame({"outlet": ["lone"]})
    result = place(pd.concat([articles, lone], ignore_index=True),
                                   np.vstack([vectors, np.ones((1, 8))]), reference=None, **SETTINGS)
    row = result.outlets.set_index("outlet").loc["lone"]
    assert (row["n_articles"], row["score_low"], row["score_high"]) == (1, -1.0, 1.0)
    assert "lone" not in {o for ends in result.axes[["low_end", "high_end"]].to_numpy().ravel() for o in ends}


def test_same_seed_gives_the_same_table():
    articles, vectors = _articles({**RATED, **UNRATED})
    first = place(articles, vectors, reference=REFERENCE, **SETTINGS)
    second = place(articles, vectors, reference=REFERENCE, **SETTINGS)
    pd.testing.assert_frame_equal(first.outlets, second.outlets)


@pytest.mark.parametrize(
    ("reference", "leanings", "match"),
    [
        ({"left a": "left", "left b": "left"}, None,
         r"at least two leanings; got 2 rated outlet\(s\) with leanings \['left'\]"),
        ({"left a": "far-left"}, None, r"unknown leanings \['far-left'\]"),
        (None, ["leftish"] * 240 + [None] * 120, r"unknown values \['leftish'\]"),
    ],
)
def test_bad_references_are_named(reference, leanings, match):
    articles, vectors = _articles({**RATED, **UNRATED})
    if leanings is not None:
        articles["leaning"] = leanings
    with pytest.raises(ValueError, match=match):
        place(articles, vectors, reference=reference, **SETTINGS)


def test_vectors_must_align_with_articles():
    articles, vectors = _articles({"a": 0.0, "b": 1.0})
    with pytest.raises(ValueError, match=r"n_articles=80; got shape \(79, 8\)"):
        place(articles, vectors[1:], reference=None, **SETTINGS)


def test_read_reference_csv_normalises_outlet_names(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("outlet,leaning\nFox-News,Right\n  The  Guardian ,left\nreuters,center\n")
    assert leaning.read_reference_csv(path) == {"fox news": "right", "the guardian": "left", "reuters": "center"}
    path.write_text("outlet,leaning\nfox news,right\nFox News,left\n")
    with pytest.raises(ValueError, match=r"outlets \['fox news'\] are rated more than once"):
        leaning.read_reference_csv(path)
    path.write_text("name,rating\nfox news,right\n")
    with pytest.raises(ValueError, match=r"missing columns \['leaning', 'outlet'\]"):
        leaning.read_reference_csv(path)


def test_leaning_png_draws_left_outlets_blue_center_grey_and_right_red():
    import io

    from matplotlib.colors import to_rgb
    from matplotlib.image import imread

    articles, vectors = _articles({**RATED, **UNRATED})
    result = place(articles, vectors, reference=REFERENCE, **SETTINGS)
    png = plots.leaning_png(result.outlets, title="t")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = imread(io.BytesIO(png))[..., :3]

    def near(colour: str) -> int:
        return int((np.abs(pixels - np.array(to_rgb(colour))).max(axis=-1) < 0.08).sum())

    assert near("tab:blue") > 20 and near("tab:red") > 20 and near("tab:gray") > 20
    only_left = result.outlets.assign(reference_leaning="left")
    assert near("tab:red") > 5 * max(1, int((np.abs(imread(io.BytesIO(plots.leaning_png(only_left, title="t")))[..., :3]
                                                    - np.array(to_rgb("tab:red"))).max(axis=-1) < 0.08).sum()))


def test_calibrated_scores_put_partisan_outlets_near_the_ends_and_label_them():
    articles, vectors = _articles({**RATED, **UNRATED})
    result = place(articles, vectors, reference=REFERENCE, **SETTINGS)
    table = result.outlets.set_index("outlet")
    # The raw P(right) - P(left) means crowd towards 0; calibration spreads them to the expected rating.
    assert table.loc[["left a", "left b"], "score"].max() <= -0.5
    assert table.loc[["right a", "right b"], "score"].min() >= 0.5
    assert table.loc[["center a", "center b"], "score"].abs().max() < 0.5
    assert table.loc[list(RATED), "label"].tolist() == ["left", "left", "center", "center", "right", "right"]
    assert table.loc["unrated west", "label"] == "left" and table.loc["unrated east", "label"] == "right"
    assert result.metrics["outlet_label_macro_f1"] == 1.0
    assert result.metrics["threshold_low"] < 0 < result.metrics["threshold_high"]
    assert result.metrics["median_score_left"] < -0.85 and result.metrics["median_score_right"] > 0.85
    assert ((table["score_low"] <= table["score"]) & (table["score"] <= table["score_high"])).all()
    # Calibration is monotone: the raw order is kept.
    assert table["raw_score"].rank().equals(table["score"].rank())


def test_fit_calibration_keeps_the_order_everywhere_with_no_flat_end():
    raw = np.array([-0.3, -0.1, 0.0, 0.1, 0.3, 0.5])
    calibration = leaning.fit_calibration(raw, np.array([-1, -1, 0, 0, 1, 1]))
    assert calibration.slope > 0 and calibration.note is None
    grid = np.linspace(-1.0, 1.0, 201)  # the whole raw range, far beyond the rated outlets
    calibrated = calibration(grid)
    assert np.all(np.diff(calibrated) > 0) and np.all(np.abs(calibrated) < 1)
    # The classes keep their order: the rated outlets' expected ratings rise left < center < right.
    left, centre, right = calibration(np.array([-0.2, 0.05, 0.4]))
    assert left < -0.5 < centre < 0.5 < right


def test_fit_calibration_falls_back_to_a_fixed_map_and_says_why_when_scores_fall_with_the_rating():
    calibration = leaning.fit_calibration(np.array([0.2, 0.0, -0.2]), np.array([-1, 0, 1]))
    assert (calibration.slope, calibration.cuts) == (1.0, (-1.0, 1.0))
    assert "the raw scores do not rise with the rating" in calibration.note and "fitted slope -" in calibration.note


def test_no_two_outlets_with_different_raw_scores_share_a_calibrated_score():
    # Unrated outlets far beyond the rated ends: a clipping calibration put them all on -1 or +1.
    beyond = {"far west": -2.5, "farther west": -3.5, "far east": 2.5, "farther east": 3.5}
    articles, vectors = _articles({**RATED, **UNRATED, **beyond})
    table = place(articles, vectors, reference=REFERENCE, **SETTINGS).outlets.set_index("outlet")
    assert table["raw_score"].nunique() == len(table)
    assert table["score"].nunique() == len(table) and (table["score"].abs() < 1).all()
    assert table["raw_score"].rank().equals(table["score"].rank())
    assert table.loc["farther west", "score"] < table.loc["far west", "score"] < table.loc["left a", "score"]
    # Every interval, the ends' too, keeps a width: the calibration is refitted on resampled outlets.
    assert ((table["score_high"] - table["score_low"]) > 1e-4).all()


def test_a_fold_whose_training_outlets_have_one_rating_says_what_it_substituted():
    metrics, calibration, _, notes = leaning.calibrate_in_cv(np.array([-0.5, -0.4, 0.4, 0.5]), np.array([-1, -1, 1, 1]),
                                                             np.array([0, 0, 1, 1]))
    assert notes[0].startswith("fold 0: its training outlets carry one rating class only (['right'])")
    assert "its 2 held-out outlets are scored 0 and labelled center" in notes[0]
    assert metrics["outlet_label_macro_f1"] == 0.0  # every outlet labelled center: neither left nor right found
    assert calibration.slope > 0  # the final calibration sees both classes


def test_choose_thresholds_maximises_outlet_macro_f1():
    scores = np.array([-0.9, -0.8, -0.3, -0.2, 0.1, 0.3, 0.35, 0.9])
    low, high = leaning.choose_thresholds(scores, np.array([-1, -1, -1, 0, 0, 0, 1, 1]))
    assert (low, high) == (-0.25, 0.35)


def test_tfidf_reference_reads_words_on_the_same_outlet_disjoint_folds():
    rng = np.random.default_rng(1)
    filler = ["".join(rng.choice(list("klmnopqrst"), 6)) for _ in range(200)]
    rows = []
    for outlet, side in {"l1": "left", "l2": "left", "l3": "left", "r1": "right", "r2": "right", "r3": "right"}.items():
        cue = "solidarity equity" if side == "left" else "liberty taxpayers"
        for _ in range(10):
            rows.append({"outlet": outlet, "leaning": side, "text": f"{cue} {cue} {' '.join(rng.choice(filler, 20))}"})
    articles = pd.DataFrame(rows)
    metrics = leaning.tfidf_reference(articles["text"].tolist(), articles, reference=None, n_folds=3,
                                      regularization=10.0, min_articles=5)
    assert metrics["tfidf_outlet_cv_macro_f1"] > 0.95
    assert metrics["tfidf_outlet_cv_spearman"] == pytest.approx(spearmanr([1, 2, 3, 4, 5, 6], [-1] * 3 + [1] * 3).statistic)
    with pytest.raises(ValueError, match=r"texts must align with articles; got 59 texts for 60 articles"):
        leaning.tfidf_reference(articles["text"].tolist()[1:], articles, reference=None, n_folds=3,
                                regularization=10.0, min_articles=5)


def test_removing_topic_and_format_directions_leaves_the_ideological_axis():
    # Dimension 0: ideology (outlet position); 1-2: topic (two well-separated clusters, unevenly mixed per
    # outlet); 3: format, driven by a covariate (columns vs reports) that is stronger than ideology.
    rng = np.random.default_rng(0)
    positions = {"p1": -1.0, "p2": -0.6, "p3": -0.2, "p4": 0.2, "p5": 0.6, "p6": 1.0}
    format_of = {"p1": 1.0, "p2": -1.0, "p3": 1.0, "p4": -1.0, "p5": 1.0, "p6": -1.0}
    rows, vectors, covariates = [], [], []
    for outlet, position in positions.items():
        for i in range(60):
            topic = np.array([4.0, 0.0]) if rng.random() < (0.2 if i % 2 else 0.8) else np.array([0.0, 4.0])
            style = format_of[outlet] + rng.normal(0, 0.1)
            vectors.append([0.3 * position + rng.normal(0, 0.05), *topic, 3.0 * style])
            covariates.append([style])
            rows.append(outlet)
    articles = pd.DataFrame({"outlet": rows})
    plain = place(articles, np.array(vectors), reference=None, **SETTINGS)
    cleaned = place(articles, np.array(vectors), reference=None, **{**SETTINGS, "n_axes": 2},
                                    topic_clusters=2, covariates=np.array(covariates))
    truth = list(positions.values())
    plain_rho = spearmanr(plain.outlets.set_index("outlet").loc[list(positions), "score"], truth).statistic
    cleaned_rho = spearmanr(cleaned.outlets.set_index("outlet").loc[list(positions), "score"], truth).statistic
    assert abs(plain_rho) < 0.6
    assert abs(cleaned_rho) == pytest.approx(1.0)
    assert list(cleaned.positions.columns) == ["axis1", "axis2"]


def test_format_features_count_quotes_first_person_questions_and_digits():
    features = leaning.format_features(['We said "no way" today. Why 2?'])
    text = 'We said "no way" today. Why 2?'
    assert features.shape == (1, 6)
    assert features[0].tolist() == pytest.approx([np.log1p(len(text)), 8 / len(text), 1 / 7, 1 / 2, 1 / len(text),
                                                  np.log1p(7 / 2)])


def test_outlet_identity_directions_are_those_separating_outlets_of_one_leaning():
    # Leaning on dimension 0; outlets of the same leaning differ along dimension 1 only.
    rng = np.random.default_rng(0)
    x, y, outlets = [], [], []
    for outlet, side, offset in (("a", "left", -2.0), ("b", "left", 2.0), ("c", "right", -1.0), ("d", "right", 1.0)):
        for _ in range(20):
            x.append([-1.0 if side == "left" else 1.0, offset, rng.normal(0, 0.01)])
            y.append(side)
            outlets.append(outlet)
    x = np.array(x)
    basis = leaning.outlet_identity_directions(x, np.array(y), np.array(outlets), 5)
    assert basis.shape == (2, 3)  # at most outlets - leanings = 2
    assert abs(basis[0] @ np.array([0.0, 1.0, 0.0])) == pytest.approx(1.0, abs=1e-3)
    projected = leaning.project_out(x, basis[:1])
    assert np.abs(projected[:, 1]).max() < 1e-2 and projected[:, 0].tolist() == pytest.approx(x[:, 0].tolist(), abs=1e-2)
    assert leaning.outlet_identity_directions(x, np.array(y), np.array(outlets), 0).shape == (0, 3)


def test_when_no_outlet_has_min_articles_the_scores_stay_raw_and_label_metrics_are_nan(caplog):
    articles, vectors = _articles({**RATED, **UNRATED}, per_outlet=1)
    result = place(articles, vectors, reference=REFERENCE, **{**SETTINGS, "min_articles": 5})
    assert np.isnan(result.metrics["outlet_label_macro_f1"]) and np.isnan(result.metrics["outlet_cv_spearman"])
    assert result.outlets["score"].between(-1, 1).all() and len(result.outlets) == len(RATED) + len(UNRATED)
    assert "lower min_articles or add articles" in caplog.text


def _words_and_vectors(*, words_carry_leaning: bool, vectors_carry_leaning: bool):
    """Eight outlets (four left, four right) of 12 articles: cue words and/or the first vector dimension say
    the leaning; whichever does not is noise."""
    rng = np.random.default_rng(3)
    filler = ["".join(rng.choice(list("abcdefghij"), 6)) for _ in range(300)]
    sides = {f"l{i}": "left" for i in range(4)} | {f"r{i}": "right" for i in range(4)}
    rows, vectors = [], []
    for outlet, side in sides.items():
        for _ in range(12):
            cue = ("solidarity equity" if side == "left" else "liberty taxpayers") if words_carry_leaning else ""
            rows.append({"outlet": outlet, "leaning": side, "text": f"{cue} {' '.join(rng.choice(filler, 20))}"})
            lean = (-1.0 if side == "left" else 1.0) if vectors_carry_leaning else 0.0
            vectors.append([lean + rng.normal(0, 0.3), *rng.normal(0, 1, 5)])
    articles = pd.DataFrame(rows)
    return articles, np.array(vectors), articles["text"].tolist()


def test_lexical_blend_reports_both_probes_and_recovers_what_only_the_words_carry():
    articles, vectors, texts = _words_and_vectors(words_carry_leaning=True, vectors_carry_leaning=False)
    settings = {**SETTINGS, "n_folds": 4, "min_articles": 5}
    alone = place(articles, vectors, reference=None, **settings, texts=texts, lexical_weight=0.0)
    blended = place(articles, vectors, reference=None, **settings, texts=texts, lexical_weight=0.5)
    words = place(articles, vectors, reference=None, **settings, texts=texts, lexical_weight=1.0)
    best = spearmanr(range(8), [-1] * 4 + [1] * 4).statistic
    # Weight 0: the axis is the embedding probe, and the TF-IDF probe is still reported beside it.
    assert alone.metrics["outlet_cv_spearman"] == alone.metrics["embedding_outlet_cv_spearman"]
    assert alone.metrics["tfidf_outlet_cv_spearman"] == pytest.approx(best)
    # The vectors are noise here: alone they cannot order the outlets, the blend can.
    assert alone.metrics["outlet_cv_spearman"] < 0.8
    assert blended.metrics["outlet_cv_spearman"] == pytest.approx(best)
    assert blended.metrics["embedding_outlet_cv_spearman"] == alone.metrics["outlet_cv_spearman"]
    # Weight 1: the axis is the TF-IDF probe.
    assert words.metrics["outlet_cv_macro_f1"] == pytest.approx(words.metrics["tfidf_outlet_cv_macro_f1"])
    table = blended.outlets.set_index("outlet")
    assert (table.loc[[f"l{i}" for i in range(4)], "score"] < 0).all()
    assert (table.loc[[f"r{i}" for i in range(4)], "score"] > 0).all()


def test_lexical_blend_scores_unrated_outlets_with_both_probes_fitted_on_every_rated_one():
    articles, vectors, texts = _words_and_vectors(words_carry_leaning=True, vectors_carry_leaning=False)
    newcomer = pd.DataFrame({"outlet": ["newcomer"] * 6, "leaning": None,
                             "text": ["liberty taxpayers and more liberty"] * 6})
    vectors = np.vstack([vectors, np.zeros((6, vectors.shape[1])) + 0.1])
    result = place(pd.concat([articles, newcomer], ignore_index=True), vectors, reference=None,
                                   **{**SETTINGS, "n_folds": 4}, texts=[*texts, *newcomer["text"]],
                                   lexical_weight=0.5)
    table = result.outlets.set_index("outlet")
    assert not table.loc["newcomer", "fitted_on"] and table.loc["newcomer", "score"] > 0


def test_standardised_probe_and_blend_settings_are_checked():
    articles, vectors, texts = _words_and_vectors(words_carry_leaning=False, vectors_carry_leaning=True)
    scaled = place(articles, vectors, reference=None,
                                   **{**SETTINGS, "n_folds": 4, "regularization": 0.1}, standardize=True)
    assert scaled.metrics["outlet_cv_macro_f1"] > 0.9
    with pytest.raises(ValueError, match="lexical_weight > 0 blends in the TF-IDF probe, which needs the articles"):
        place(articles, vectors, reference=None, **SETTINGS, lexical_weight=0.5)
    with pytest.raises(ValueError, match=r"lexical_weight must be in \[0, 1\]; got 1.5"):
        place(articles, vectors, reference=None, **SETTINGS, texts=texts, lexical_weight=1.5)
    with pytest.raises(ValueError, match="texts must align with articles; got 95 texts for 96 articles"):
        place(articles, vectors, reference=None, **SETTINGS, texts=texts[1:])


def test_leaning_by_topic_ranks_the_topics_that_divide_outlets_first():
    # Topic "tax": the outlets lean apart (-0.8 .. +0.8); topic "weather": they agree (all near 0).
    rows = []
    for outlet, lean in {"west": -0.8, "middle": 0.0, "east": 0.8}.items():
        rows += [(outlet, lean, "tax")] * 4 + [(outlet, 0.05 * lean, "weather")] * 4
    rows += [("tiny", 0.9, "tax")] * 2  # below min_articles on the topic: not counted
    rows += [("west", 0.0, None)]  # no topic: left out
    outlets, scores, topics = (list(column) for column in zip(*rows))
    table = leaning.leaning_by_topic(np.array(outlets), np.array(scores), topics, min_articles=3,
                                     keywords={"tax": ["tax", "budget"]})
    assert list(table.columns) == list(leaning.TOPIC_LEANING_COLUMNS)
    assert table["topic"].tolist() == ["tax", "weather"]
    tax = table.iloc[0]
    assert (tax["left_outlet"], tax["right_outlet"], tax["n_outlets"]) == ("west", "east", 3)
    assert tax["spread"] == pytest.approx(1.6) and tax["keywords"] == "tax, budget"
    assert tax["n_articles"] == 14 and table.iloc[1]["spread"] == pytest.approx(0.08)


def test_topic_free_view_places_an_outlet_by_how_it_writes_not_by_what_it_covers():
    # Rated left outlets write mostly on topic 0, right ones on topic 1: what an outlet covers predicts its rating
    # among the rated. The unrated outlet leans left (dimension 0) but covers topic 1, the "right" topic.
    rng = np.random.default_rng(0)
    topic_centres = np.zeros((2, 8))
    topic_centres[0, 1], topic_centres[1, 2] = 3.0, 3.0
    plan = {"left a": (-0.5, 0.9), "left b": (-0.5, 0.8), "center a": (0.0, 0.5), "center b": (0.0, 0.5),
            "right a": (0.5, 0.1), "right b": (0.5, 0.2), "newcomer": (-0.5, 0.0)}  # (lean, share on topic 0)
    rows, vectors = [], []
    for outlet, (lean, topic0) in plan.items():
        for _ in range(40):
            topic = 0 if rng.random() < topic0 else 1
            vector = topic_centres[topic] + rng.normal(0.0, 0.3, 8)
            vector[0] += lean
            rows.append(outlet)
            vectors.append(vector)
    articles = pd.DataFrame({"outlet": rows})
    reference = {o: ("left" if lean < 0 else "right" if lean > 0 else "center")
                 for o, (lean, _) in plan.items() if o != "newcomer"}
    settings = {**SETTINGS, "n_folds": 3, "topic_clusters": 2}
    plain = place(articles, np.array(vectors), reference=reference, **settings)
    free = place(articles, np.array(vectors), reference=reference, **settings, topic_free_share=1.0)
    raw = {name: r.outlets.set_index("outlet").loc["newcomer", "raw_score"] for name, r in (("plain", plain), ("free", free))}
    assert raw["free"] < raw["plain"] and raw["free"] < 0
    assert "topic_free_outlet_cv_spearman" in free.metrics and "topic_free_outlet_cv_spearman" not in plain.metrics
    # With nothing to subtract (fewer than two topics) there is no topic-free view, and no figures claim one.
    same = place(articles, np.array(vectors), reference=reference, **{**settings, "topic_clusters": 1},
                                 topic_free_share=0.5)
    assert "topic_free_outlet_cv_spearman" not in same.metrics
    assert same.metrics["embedding_outlet_cv_spearman"] == pytest.approx(plain.metrics["embedding_outlet_cv_spearman"])
    with pytest.raises(ValueError, match=r"topic_free_share must be in \[0, 1\]; got -0.1"):
        place(articles, np.array(vectors), reference=reference, **settings, topic_free_share=-0.1)


def test_topic_outlet_leaning_gives_each_outlets_mean_score_per_topic_left_first():
    rows = [("east", 0.6, 1)] * 3 + [("west", -0.4, 1)] * 3 + [("west", 0.2, 1)] + [("east", 0.1, 2)] * 3
    rows += [("west", -0.9, 2)] * 2  # below min_articles on topic 2: no cell
    rows += [("west", -1.0, None)]  # no topic (e.g. map noise passed as None): left out
    outlets, scores, topics = (list(column) for column in zip(*rows))
    cells = leaning.topic_outlet_leaning(np.array(outlets), np.array(scores), topics, min_articles=3,
                                         keywords={1: ["tax", "budget"]})
    assert list(cells.columns) == list(leaning.TOPIC_OUTLET_LEANING_COLUMNS)
    assert cells[["topic", "outlet", "n_articles"]].values.tolist() == [[1, "west", 4], [1, "east", 3], [2, "east", 3]]
    assert cells["mean_score"].tolist() == pytest.approx([-0.25, 0.6, 0.1])
    assert cells["keywords"].tolist() == ["tax, budget", "tax, budget", ""]
    assert all(type(t) is int for t in cells["topic"])  # cluster ids stay ids beside None, not 1.0 / 2.0


def test_probe_path_returns_each_articles_held_out_score():
    articles, vectors = _articles({**RATED, **UNRATED})
    result = place(articles, vectors, reference=REFERENCE, **SETTINGS)
    assert result.article_scores.shape == (len(articles),)
    assert np.all(np.abs(result.article_scores) <= 1)
    means = pd.Series(result.article_scores).groupby(articles["outlet"]).mean()
    assert means.loc["unrated west"] < 0 < means.loc["unrated east"]
    assert place(articles, vectors, reference=None, **SETTINGS).article_scores is None


def test_axis_texts_strip_each_outlets_recurring_lines_from_the_body_and_keep_the_title():
    footer = "The Morning Edition team reports daily"
    articles = pd.DataFrame({"outlet": ["a"] * 3 + ["b"], "title": ["One", None, "Three", "Four"],
                             "text": [f"Body {i}.\n{footer}" for i in range(3)] + [f"Body b.\n{footer}"]})
    texts = leaning.axis_texts(articles, strip_min_share=0.5, strip_min_count=3)
    assert texts == ["One. Body 0.", "Body 1.", "Three. Body 2.", f"Four. Body b.\n{footer}"]  # once in b: kept
