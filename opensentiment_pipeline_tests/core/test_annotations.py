"""Exact-output tests for vote aggregation, gold-label merging and agreement statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opensentiment_pipeline.core.labels.annotations import (
    ITEM_COLUMNS,
    POSTERIOR_COLUMNS,
    agreement_stats,
    dawid_skene,
    fleiss_kappa,
    majority_vote,
    merge_annotations,
    one_coin_dawid_skene,
    votes_long,
)
from opensentiment_pipeline.core.schema import MERGED_COLUMNS


def _votes(**labels_by_annotator: str) -> list[dict[str, str]]:
    return [{"annotator_id": a, "label": lab} for a, lab in labels_by_annotator.items()]


def _articles(rows: dict[str, tuple]) -> pd.DataFrame:
    """rows: article_id -> (task, gold label or None, source agreement or NaN, votes)."""
    return pd.DataFrame(
        [(aid, task, label, agreement, votes) for aid, (task, label, agreement, votes) in rows.items()],
        columns=["article_id", "task", "label", "agreement", "votes"],
    )


@pytest.fixture
def articles() -> pd.DataFrame:
    return _articles({
        "a3": ("sentiment", None, np.nan, _votes(x="positive")),  # one vote: thin when min_votes=2
        "a1": ("sentiment", None, np.nan, _votes(x="positive", y="positive", z="negative")),
        "a2": ("sentiment", None, np.nan, _votes(x="negative", y="negative")),
        "g1": ("sentiment", "neutral", 0.75, []),  # gold only, the source reports its agreement
        "g2": ("sentiment", "positive", np.nan, []),  # gold only, no agreement given -> NaN (not measured)
        "g3": ("sentiment", "negative", np.nan, _votes(x="positive", y="negative", z="positive")),  # gold beats votes
        "n1": ("sentiment", None, np.nan, []),  # nothing to learn from
    })


def test_votes_long_explodes_lists_and_parquet_arrays(articles, tmp_path):
    path = tmp_path / "articles.parquet"
    articles.to_parquet(path)
    from_parquet = pd.read_parquet(path)
    assert isinstance(from_parquet.loc[0, "votes"], np.ndarray)  # the case the numpy branch exists for
    for frame in (articles, from_parquet):
        long = votes_long(frame)
        assert list(long.columns) == ["article_id", "task", "annotator_id", "label"]
        assert long[long.article_id == "a1"][["annotator_id", "label"]].values.tolist() == [
            ["x", "positive"], ["y", "positive"], ["z", "negative"]]
        assert len(long) == 9


def test_majority_vote_label_agreement_and_vote_shares(articles):
    items = majority_vote(votes_long(articles)).items.set_index("article_id")
    assert items["label"].to_dict() == {"a1": "positive", "a2": "negative", "a3": "positive", "g3": "positive"}
    assert items["n_votes"].to_dict() == {"a1": 3, "a2": 2, "a3": 1, "g3": 3}
    assert items.loc["a1", "agreement"] == pytest.approx(2 / 3)
    assert items.loc["a1", ["p_negative", "p_neutral", "p_positive"]].tolist() == pytest.approx([1 / 3, 0, 2 / 3])
    assert items.loc["a1", "entropy"] == pytest.approx(-(1 / 3) * np.log(1 / 3) - (2 / 3) * np.log(2 / 3))
    assert items.loc["a2", "entropy"] == 0.0


def test_majority_vote_annotator_accuracy_is_agreement_with_majority(articles):
    annotators = majority_vote(votes_long(articles)).annotators.set_index("annotator_id")
    # x: a1 ok, a2 ok, a3 ok, g3 ok; y: a1 ok, a2 ok, g3 miss; z: a1 miss, g3 ok
    assert annotators["accuracy"].to_dict() == {"x": 1.0, "y": pytest.approx(2 / 3), "z": 0.5}
    assert annotators["n_votes"].to_dict() == {"x": 4, "y": 3, "z": 2}


def test_ties_prefer_neutral_for_sentiment_then_label_order():
    articles = _articles({
        "t1": ("sentiment", None, np.nan, _votes(x="positive", y="neutral")),
        "t2": ("sentiment", None, np.nan, _votes(x="positive", y="negative")),
        "t3": ("bias", None, np.nan, _votes(x="non-biased", y="biased")),
    })
    shuffled = articles.assign(votes=[v[::-1] for v in articles["votes"]])  # row order must not matter
    for frame in (articles, shuffled):
        items = majority_vote(votes_long(frame)).items
        assert items.set_index("article_id")["label"].to_dict() == {"t1": "neutral", "t2": "negative", "t3": "biased"}
        assert items["agreement"].tolist() == [0.5, 0.5, 0.5]


def _spammer_votes() -> pd.DataFrame:
    """r1 and r2 agree on six items across all labels; s1 and s2 answer "positive" whatever the text says.

    On "x" only r1 and the two spammers voted: majority vote says positive (2 of 3). Dawid-Skene sees from
    the six shared items that a spammer's "positive" is equally likely under every true label, so their
    votes carry no evidence, and r1 (right every time) decides: negative.
    """
    truth = ["negative", "neutral", "positive", "negative", "neutral", "positive"]
    rows = {f"a{i}": ("sentiment", None, np.nan, _votes(r1=t, r2=t, s1="positive", s2="positive"))
            for i, t in enumerate(truth)}
    rows["x"] = ("sentiment", None, np.nan, _votes(r1="negative", s1="positive", s2="positive"))
    return votes_long(_articles(rows))


def test_dawid_skene_learns_to_ignore_constant_spammers():
    votes = _spammer_votes()
    mv = majority_vote(votes).items.set_index("article_id")
    ds = dawid_skene(votes, n_iter=50)
    items = ds.items.set_index("article_id")
    assert mv.loc["x", "label"] == "positive"
    assert items.loc["x", "label"] == "negative"
    assert items.loc["x", "agreement"] == pytest.approx(1 / 3)  # share of votes, not the posterior
    assert items.loc["x", "p_negative"] == pytest.approx(1.0, abs=1e-3)
    assert items.drop(index="x")["label"].tolist() == ["negative", "neutral", "positive"] * 2
    accuracy = ds.annotators.set_index("annotator_id")["accuracy"]
    assert accuracy["r1"] == pytest.approx(1.0, abs=1e-3)
    assert accuracy["s1"] == pytest.approx(2 / 7, abs=1e-3)  # right only on the 2 of 7 items that are positive


def test_one_coin_dawid_skene_matches_majority_on_unanimous_votes():
    votes = votes_long(_articles({
        "a": ("sentiment", None, np.nan, _votes(x="positive", y="positive")),
        "b": ("sentiment", None, np.nan, _votes(x="negative", y="negative")),
        "c": ("bias", None, np.nan, _votes(x="biased", y="biased")),
    }))
    items = one_coin_dawid_skene(votes, n_iter=20).items
    assert list(items.columns) == list(ITEM_COLUMNS)
    assert items["label"].tolist() == ["positive", "negative", "biased"]
    assert np.isnan(items.loc[2, "p_positive"])  # a bias item has no sentiment posterior


def test_merge_gold_overrides_votes_and_passes_gold_only_items(articles):
    result = merge_annotations(articles, method="majority_vote", min_votes=1, n_iter=1)
    merged = result.merged.set_index("article_id")
    assert merged.loc["g3", ["label", "method", "n_votes"]].tolist() == ["negative", "gold", 3]
    assert merged.loc["g3", "agreement"] == pytest.approx(1 / 3)  # share of votes that agree with gold
    assert merged.loc["g1", ["label", "agreement", "n_votes", "method"]].tolist() == ["neutral", 0.75, 0, "gold"]
    assert np.isnan(merged.loc["g2", "agreement"])  # unknown, not unanimous
    assert merged.loc[["g1", "g2"], list(POSTERIOR_COLUMNS) + ["entropy"]].isna().all().all()
    assert merged.loc["a1", ["label", "method"]].tolist() == ["positive", "majority_vote"]


def test_merge_drops_articles_below_min_votes(articles):
    result = merge_annotations(articles, method="majority_vote", min_votes=2, n_iter=1)
    assert result.merged["article_id"].tolist() == ["a1", "a2", "g1", "g2", "g3"]  # sorted; a3, n1 left out
    assert (result.dropped_thin, result.dropped_unlabelled) == (1, 1)
    assert result.stats == {"n_merged": 5, "n_from_votes": 2, "n_gold_only": 2, "n_gold_overrides": 1,
                            "dropped_thin": 1, "dropped_unlabelled": 1}
    assert list(result.merged.columns) == [*MERGED_COLUMNS, *POSTERIOR_COLUMNS, "entropy"]


def test_merge_is_deterministic_and_leaves_input_untouched(articles):
    before = articles.copy(deep=True)
    first = merge_annotations(articles, method="dawid_skene", min_votes=1, n_iter=20).merged
    second = merge_annotations(articles.sample(frac=1.0, random_state=0), method="dawid_skene",
                               min_votes=1, n_iter=20).merged
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(articles, before)


def test_merge_without_any_votes_keeps_gold_labels():
    articles = _articles({"g": ("sentiment", "positive", np.nan, []), "h": ("bias", "biased", 0.5, None)})
    merged = merge_annotations(articles, method="dawid_skene", min_votes=3, n_iter=5).merged
    assert merged[["article_id", "label", "n_votes"]].values.tolist() == [["g", "positive", 0], ["h", "biased", 0]]
    assert np.isnan(merged["agreement"].iloc[0]) and merged["agreement"].iloc[1] == 0.5  # g's source gives none


@pytest.mark.parametrize(
    ("votes", "match"),
    [
        ([{"annotator_id": "x", "label": "joyful"}], r"unknown labels \['joyful'\].*article_id='a1', annotator_id='x'"),
        ([{"annotator_id": "", "label": "positive"}], r"article_id='a1' has a vote with missing annotator_id"),
        ([{"label": "positive"}], r"article_id='a1' has a vote with missing annotator_id"),
        ([{"annotator_id": "x", "label": None}], r"article_id='a1' has a vote with missing label"),
        (_votes(x="positive") * 2, r"duplicate votes by annotator_id='x' on article_id='a1'"),
    ],
)
def test_bad_votes_are_named(votes, match):
    articles = _articles({"a1": ("sentiment", None, np.nan, votes)})
    with pytest.raises(ValueError, match=match):
        merge_annotations(articles, method="majority_vote", min_votes=1, n_iter=1)


def test_vote_with_unknown_task_is_named():
    articles = _articles({"a1": ("emotion", None, np.nan, _votes(x="positive"))})
    with pytest.raises(ValueError, match=r"unknown task 'emotion' at article_id='a1'; expected one of \['bias'"):
        votes_long(articles)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "mode", "min_votes": 1, "n_iter": 1}, r"unknown method 'mode'; expected one of \['dawid_skene'"),
        ({"method": "majority_vote", "min_votes": 0, "n_iter": 1}, r"min_votes must be an int >= 1, got 0"),
        ({"method": "dawid_skene", "min_votes": 1, "n_iter": 0}, r"n_iter must be an int >= 1"),
    ],
)
def test_bad_merge_arguments_are_named(articles, kwargs, match):
    with pytest.raises(ValueError, match=match):
        merge_annotations(articles, **kwargs)


def test_unknown_gold_label_is_named(articles):
    with pytest.raises(ValueError, match=r"unknown labels \['joyful'\]"):
        merge_annotations(articles.assign(label="joyful"), method="majority_vote", min_votes=1, n_iter=1)


def test_fleiss_kappa_wikipedia_example():
    # https://en.wikipedia.org/wiki/Fleiss%27_kappa#Worked_example: 10 items, 14 raters, 5 categories
    counts = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
              [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(np.array(counts)) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_with_varying_vote_counts():
    # P_i = 1, 1/3 (items of 2 and 3 votes); the 1-vote item is not pairable and is ignored.
    # p = (3/5, 2/5) -> P_e = 13/25; kappa = (2/3 - 13/25) / (12/25) = 11/36
    assert fleiss_kappa(np.array([[2, 0], [1, 2], [0, 1]])) == pytest.approx(11 / 36)
    assert np.isnan(fleiss_kappa(np.array([[3, 0], [2, 0]])))  # one label only: chance agreement is 1


def test_agreement_stats_perfect_agreement():
    votes = votes_long(_articles({
        "a": ("sentiment", None, np.nan, _votes(x="positive", y="positive", z="positive")),
        "b": ("sentiment", None, np.nan, _votes(x="negative", y="negative")),
        "c": ("sentiment", None, np.nan, _votes(y="neutral", z="neutral")),
    }))
    assert agreement_stats(votes) == {"krippendorff_alpha": 1.0, "fleiss_kappa": 1.0, "mean_item_agreement": 1.0,
                                      "mean_votes_per_item": pytest.approx(7 / 3), "n_voted_items": 3.0,
                                      "n_annotators": 3.0}


def test_agreement_stats_prefixes_keys_per_task():
    votes = votes_long(_articles({
        "a": ("sentiment", None, np.nan, _votes(x="positive", y="negative")),
        "b": ("bias", None, np.nan, _votes(x="biased", y="biased")),
    }))
    stats = agreement_stats(votes)
    assert stats["sentiment_mean_item_agreement"] == 0.5
    assert stats["bias_n_voted_items"] == 1.0
    assert np.isnan(stats["bias_krippendorff_alpha"])  # a single label: alpha is undefined, not 1
    assert len(stats) == 12
