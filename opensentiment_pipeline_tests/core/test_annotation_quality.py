"""Exact-output tests for crowd-versus-expert agreement and for suspect-label detection."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from opensentiment_pipeline.core.labels.annotation_quality import (
    QUALITY_COLUMNS,
    SUSPECT_COLUMNS,
    best_method,
    compare_with_experts,
    find_suspect_labels,
    flag_suspect_labels,
    read_votes,
)

B, N = "biased", "non-biased"


def _votes(table: dict[str, dict[str, str]]) -> pd.DataFrame:
    """{article_id: {annotator_id: label}} -> a bias vote table (VOTE_COLUMNS)."""
    rows = [(aid, "bias", ann, lab) for aid, votes in table.items() for ann, lab in votes.items()]
    return pd.DataFrame(rows, columns=["article_id", "task", "annotator_id", "label"])


@pytest.fixture
def experts() -> pd.DataFrame:
    # Majority labels a-f: B B B B N N. "t" ties 1:1, so it has no expert label; "e9" has no crowd votes.
    table = {aid: {"x": lab, "y": lab, "z": N if lab == B else B} for aid, lab in zip("abcdef", [B, B, B, B, N, N])}
    return _votes({**table, "t": {"x": B, "y": N}, "e9": {"x": B, "y": B}})


@pytest.fixture
def crowd() -> pd.DataFrame:
    # Majority labels a-f: B B B N N B (d and f disagree with the experts); "c9" has no expert votes.
    labels = [B, B, B, N, N, B]
    table = {aid: {"w1": lab, "w2": lab, "w3": N if lab == B else B} for aid, lab in zip("abcdef", labels)}
    return _votes({**table, "t": {"w1": B, "w2": B}, "c9": {"w1": N, "w2": N}})


def test_compare_with_experts_hand_computed_accuracy_and_kappa(experts, crowd):
    report = compare_with_experts(experts, crowd, methods=["majority_vote"], n_iter=1)
    assert list(report.columns) == list(QUALITY_COLUMNS)
    row = report.iloc[0]
    assert (row["method"], row["n_items"], row["n_expert_ties"]) == ("majority_vote", 6, 1)
    assert row["accuracy"] == pytest.approx(4 / 6)
    # p_o = 4/6; experts B 4/6, N 2/6; crowd B 4/6, N 2/6 -> p_e = 16/36 + 4/36 = 5/9; (2/3 - 5/9) / (4/9) = 1/4
    assert row["cohen_kappa"] == pytest.approx(1 / 4)


def test_compare_with_experts_one_row_per_method_in_order(experts, crowd):
    report = compare_with_experts(experts, crowd, methods=["dawid_skene", "majority_vote"], n_iter=50)
    assert report["method"].tolist() == ["dawid_skene", "majority_vote"]
    assert report["n_items"].tolist() == [6, 6]
    assert report["accuracy"].between(0, 1).all()


def test_compare_with_experts_kappa_is_nan_when_only_one_label_occurs():
    votes = _votes({"a": {"x": B, "y": B}, "b": {"x": B, "y": B}})
    report = compare_with_experts(votes, votes, methods=["majority_vote"], n_iter=1)
    assert report.loc[0, "accuracy"] == 1.0 and np.isnan(report.loc[0, "cohen_kappa"])
    assert best_method(report) is None


def test_best_method_is_highest_kappa():
    report = pd.DataFrame({"method": ["majority_vote", "dawid_skene"], "cohen_kappa": [0.48, 0.56]})
    assert best_method(report) == "dawid_skene"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"methods": ["mode"]}, r"methods must be a non-empty subset of \['dawid_skene'.*got \['mode'\]"),
        ({"methods": []}, r"methods must be a non-empty subset"),
    ],
)
def test_compare_with_experts_bad_methods_are_named(experts, crowd, kwargs, match):
    with pytest.raises(ValueError, match=match):
        compare_with_experts(experts, crowd, n_iter=1, **kwargs)


def test_compare_with_experts_without_shared_items_is_an_error(experts):
    other = _votes({"zz": {"w1": B, "w2": B}})
    with pytest.raises(ValueError, match=r"no item has both an expert label and crowd votes \(7 expert-labelled"):
        compare_with_experts(experts, other, methods=["majority_vote"], n_iter=1)


def test_read_votes_uses_content_ids_shared_across_files(tmp_path):
    text = ["The senator lied again.", "Rain is expected on Monday."]
    pd.DataFrame({"text": text * 2, "outlet": "reuters", "type": "center",
                  "label_bias": ["Biased", "Non-biased", "Biased", None], "annotator_id": [1, 1, 2, 2]}).to_csv(
        tmp_path / "experts.csv", index=False)
    pd.DataFrame({"text": text, "outlet": "reuters", "type": "center", "label_bias": ["Biased", "Biased"],
                  "worker_pseudo_id": ["w1", "w1"]}).to_csv(tmp_path / "crowd.csv", index=False)
    expert_votes, expert_rejects = read_votes(str(tmp_path / "experts.csv"), name="experts")
    crowd_votes, crowd_rejects = read_votes(str(tmp_path / "crowd.csv"), name="crowd")
    assert (len(expert_votes), expert_rejects, len(crowd_votes), crowd_rejects) == (3, 1, 2, 0)  # 1 missing label
    assert set(expert_votes["article_id"]) == set(crowd_votes["article_id"])


POSITIVE = ["great", "excellent", "wonderful", "strong", "record", "gain", "praised", "happy"]
NEGATIVE = ["terrible", "awful", "weak", "loss", "crash", "blamed", "angry", "failed"]


def _separable_items(flip: tuple[int, ...]) -> pd.DataFrame:
    """48 distinct sentences, 24 per class, each made of 3 of its class's 8 words; `flip` rows get the other
    label. Rows alternate positive/negative: row 2i is pos<i>, row 2i+1 is neg<i>."""
    rows = []
    for i, combo in enumerate(itertools.combinations(range(8), 3)):
        if i == 24:
            break
        for label, words in (("positive", POSITIVE), ("negative", NEGATIVE)):
            rows.append((f"{label[:3]}{i:02d}", " ".join(words[j] for j in combo) + " results", label))
    items = pd.DataFrame(rows, columns=["article_id", "text", "label"])
    other = {"positive": "negative", "negative": "positive"}
    items.loc[list(flip), "label"] = items.loc[list(flip), "label"].map(other)
    return items


def test_find_suspect_labels_flags_exactly_the_flipped_labels():
    items = _separable_items(flip=(4, 17))  # pos02 -> negative, neg08 -> positive
    suspects = find_suspect_labels(items, labels=("negative", "neutral", "positive"), n_folds=4, seed=0)
    assert suspects["article_id"].tolist() == ["pos02", "neg08"]  # seeds 1 and 2 flag the same two
    assert suspects["rank"].tolist() == [1, 2]
    assert suspects.set_index("article_id")["suggested_label"].to_dict() == {"pos02": "positive", "neg08": "negative"}
    assert suspects["label_quality"].is_monotonic_increasing and (suspects["label_quality"] < 0.5).all()
    again = find_suspect_labels(items, labels=("negative", "neutral", "positive"), n_folds=4, seed=0)
    pd.testing.assert_frame_equal(suspects, again)


def test_flag_suspect_labels_skips_tasks_too_small_to_cross_validate():
    items = _separable_items(flip=(4, 17))
    merged = pd.concat([
        items.assign(task="sentiment"),
        pd.DataFrame({"article_id": ["b1", "b2", "b3"], "text": ["x y", "y z", "z x"], "task": "bias",
                      "label": [B, B, N]}),
    ], ignore_index=True).assign(agreement=1.0, n_votes=3, method="majority_vote", target=None)
    result = flag_suspect_labels(merged.drop(columns=["text", "target"]), merged[["article_id", "text", "target"]],
                                 n_folds=4, seed=0)
    assert result.checked == {"sentiment": 48}
    assert result.skipped == {"bias": "class(es) {'biased': 2, 'non-biased': 1} have fewer than n_folds=4 items; "
                                      "stratified folds need at least n_folds per class (lower n_folds or add labels)"}
    assert list(result.suspects.columns) == list(SUSPECT_COLUMNS)
    assert sorted(result.suspects["article_id"]) == ["neg08", "pos02"]


def test_flag_suspect_labels_with_every_task_skipped_returns_typed_empty_table():
    merged = pd.DataFrame({"article_id": ["a", "b"], "task": "bias", "label": B, "agreement": 1.0, "n_votes": 2,
                           "method": "gold"})
    articles = pd.DataFrame({"article_id": ["a", "b"], "text": ["x", "y"], "target": None})
    result = flag_suspect_labels(merged, articles, n_folds=2, seed=0)
    assert result.skipped == {"bias": "only 1 class (['biased']); a label model needs at least 2"}
    assert result.suspects.empty and result.suspects["label_quality"].dtype == float


def test_find_suspect_labels_too_small_is_an_error_naming_the_class():
    items = _separable_items(flip=()).head(5)  # 3 positive, 2 negative
    with pytest.raises(ValueError, match=r"cannot cross-validate: class\(es\) \{'negative': 2, 'positive': 3\} "
                                         r"have fewer than n_folds=5"):
        find_suspect_labels(items, labels=("negative", "neutral", "positive"), n_folds=5, seed=0)


def test_flag_suspect_labels_needs_the_text_of_every_item():
    merged = pd.DataFrame({"article_id": ["a", "b"], "task": "bias", "label": [B, N], "agreement": 1.0,
                           "n_votes": 2, "method": "gold"})
    articles = pd.DataFrame({"article_id": ["a"], "text": ["x"], "target": None})
    with pytest.raises(ValueError, match=r"1 merged items have no article text, e.g. \['b'\]"):
        flag_suspect_labels(merged, articles, n_folds=2, seed=0)


@pytest.mark.parametrize("n_folds", [1, 2.0, True])
def test_bad_n_folds_is_named(n_folds):
    with pytest.raises(ValueError, match=r"n_folds must be an int >= 2"):
        find_suspect_labels(_separable_items(flip=()), labels=("negative", "positive"), n_folds=n_folds, seed=0)


@pytest.mark.shared_data
def test_crowd_versus_experts_on_babe_sg1_and_mbic(shared_data):
    babe = shared_data / "babe_mbic"
    experts, _ = read_votes(str(babe / "babe_sg1_raw_annotations.parquet"), name="experts")
    crowd, _ = read_votes(str(babe / "mbic_raw_annotations.parquet"), name="crowd")
    report = compare_with_experts(experts, crowd, methods=["majority_vote", "dawid_skene"], n_iter=100)
    # 1,698 sentences are in both files; 155 of them split the 8 experts 4:4 (SG1's final file says
    # "No agreement" for 154) and are left out.
    assert report["n_items"].tolist() == [1543, 1543] and report["n_expert_ties"].tolist() == [155, 155]
    assert report["accuracy"].between(0.5, 1.0).all() and (report["cohen_kappa"] > 0).all()
    assert best_method(report) == "dawid_skene"  # the default of MergedAnnotationsConfig rests on this
