import numpy as np
import pandas as pd
import pytest

from opensentiment_pipeline.core.model import evaluation

LABELS = ("negative", "neutral", "positive")


def test_scores_are_exact_on_a_small_example():
    y_true = ["negative", "negative", "neutral", "positive"]
    y_pred = ["negative", "neutral", "neutral", "positive"]
    scores = evaluation.classification_scores(y_true, y_pred, labels=LABELS)
    assert scores["accuracy"] == 0.75
    # per-class F1: negative 2/3 (P=1, R=.5), neutral 2/3 (P=.5, R=1), positive 1
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert scores["per_class"]["negative"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert scores["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_majority_baseline_predicts_the_most_frequent_training_label():
    assert evaluation.majority_baseline(["neutral", "positive", "neutral"], 2) == ["neutral", "neutral"]


def test_bootstrap_interval_brackets_the_point_estimate_and_is_seeded():
    rng = np.random.default_rng(0)
    y_true = rng.choice(LABELS, 200).tolist()
    y_pred = [t if rng.random() < 0.7 else "neutral" for t in y_true]
    point = evaluation.classification_scores(y_true, y_pred, labels=LABELS)["macro_f1"]
    low, high = evaluation.bootstrap_macro_f1(y_true, y_pred, labels=LABELS, n_resamples=200, seed=1)
    assert low < point < high
    assert (low, high) == evaluation.bootstrap_macro_f1(y_true, y_pred, labels=LABELS, n_resamples=200, seed=1)


def test_ece_is_zero_for_perfectly_calibrated_confidence():
    proba = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert evaluation.expected_calibration_error(proba, np.array([0, 1])) == 0.0
    # always 90 % sure and always wrong: ECE = 0.9
    assert evaluation.expected_calibration_error(np.array([[0.9, 0.1, 0.0]]), np.array([1])) == pytest.approx(0.9)


def test_report_scores_each_source_and_outlet_and_both_baselines():
    test = pd.DataFrame({"text": ["good", "bad", "fine", "good news", "bad news", "ok"],
                         "label": ["positive", "negative", "neutral", "positive", "negative", "neutral"],
                         "source": ["a", "a", "a", "b", "b", "b"], "outlet": ["x"] * 6})
    proba = np.eye(3)[[2, 0, 1, 2, 0, 0]]  # one mistake, in source b
    report = evaluation.evaluate_predictions(test, proba, test, labels=LABELS, n_bootstrap=50, seed=0, min_group_rows=1)
    by_source = {row["source"]: row["accuracy"] for row in report["by_source"]}
    assert by_source == {"a": 1.0, "b": pytest.approx(2 / 3)}
    assert report["by_outlet"] == [{"outlet": "x", "n": 6, "macro_f1": report["macro_f1"], "accuracy": report["accuracy"]}]
    assert set(report["baselines"]) == {"majority_class", "tfidf_logreg"}
    assert "unanimous_by_source" not in report  # no agreement column, no unanimous subset
    unanimous = evaluation.evaluate_predictions(test.assign(agreement=[1, 1, 1, 1, 0.5, 1]), proba, test, labels=LABELS,
                                                n_bootstrap=5, seed=0, min_group_rows=1)["unanimous_by_source"]
    assert unanimous == [{"source": "a", "n": 3, "macro_f1": 1.0, "accuracy": 1.0},
                         {"source": "b", "n": 2, "macro_f1": pytest.approx(1 / 3), "accuracy": 0.5}]
    unknown = evaluation.evaluate_predictions(test.assign(agreement=[1, 1, 1] + [np.nan] * 3), proba, test,
                                              labels=LABELS, n_bootstrap=5, seed=0, min_group_rows=1)
    assert [row["source"] for row in unknown["unanimous_by_source"]] == ["a"]  # b reports no agreement: not unanimous
    with pytest.raises(ValueError, match="6 test rows but 2 probability rows"):
        evaluation.evaluate_predictions(test, proba[:2], test, labels=LABELS, n_bootstrap=5, seed=0, min_group_rows=1)
