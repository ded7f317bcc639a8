"""Held-out evaluation: macro-F1 with a bootstrap interval, per-class and per-group scores, baselines.

Everything takes plain label arrays, so the same code scores the adapter and the baselines on the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def classification_scores(y_true: Sequence[str], y_pred: Sequence[str], *, labels: Sequence[str]) -> dict:
    """Macro-F1, accuracy, per-class precision/recall/F1/support and the confusion matrix (rows = truth)."""
    labels = list(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        "n": len(y_true),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else float("nan"),
        "per_class": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def bootstrap_macro_f1(y_true: Sequence[str], y_pred: Sequence[str], *, labels: Sequence[str], n_resamples: int,
                       seed: int) -> tuple[float, float]:
    """95 % percentile interval of macro-F1 over `n_resamples` bootstrap resamples of the rows."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    scores = [
        f1_score(y_true[idx], y_pred[idx], labels=list(labels), average="macro", zero_division=0)
        for idx in (rng.integers(0, len(y_true), len(y_true)) for _ in range(n_resamples))
    ]
    low, high = np.percentile(scores, [2.5, 97.5])
    return float(low), float(high)


def majority_baseline(train_labels: Sequence[str], n_test: int) -> list[str]:
    """Predict the most frequent training label for every test row (ties: first in sorted order)."""
    counts = pd.Series(list(train_labels)).value_counts()
    top = sorted(counts[counts == counts.max()].index)[0]
    return [top] * n_test


def tfidf_baseline(train_texts: Sequence[str], train_labels: Sequence[str], test_texts: Sequence[str], *,
                   seed: int) -> list[str]:
    """TF-IDF over word 1-2 grams + logistic regression, the classic strong linear baseline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True),
        LogisticRegression(max_iter=2000, C=10.0, class_weight="balanced", random_state=seed),
    )
    model.fit(list(train_texts), list(train_labels))
    return model.predict(list(test_texts)).tolist()


def expected_calibration_error(proba: np.ndarray, y_true_idx: np.ndarray, *, n_bins: int = 10) -> float:
    """ECE of the top-class confidence over equal-width bins (Guo et al. 2017)."""
    if len(proba) == 0:
        return float("nan")
    confidence, predicted = proba.max(1), proba.argmax(1)
    correct = (predicted == y_true_idx).astype(float)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    return float(sum(
        abs(correct[bins == b].mean() - confidence[bins == b].mean()) * (bins == b).mean()
        for b in range(n_bins) if (bins == b).any()
    ))


def scores_by_group(frame: pd.DataFrame, group: str, *, labels: Sequence[str], min_rows: int) -> pd.DataFrame:
    """Macro-F1 and accuracy per value of `group` (columns label, prediction); groups under `min_rows` skipped."""
    rows = []
    for value, part in frame.groupby(group, sort=True):
        if len(part) < min_rows:
            continue
        scores = classification_scores(part["label"], part["prediction"], labels=labels)
        rows.append({group: value, "n": len(part), "macro_f1": scores["macro_f1"], "accuracy": scores["accuracy"]})
    return pd.DataFrame(rows, columns=[group, "n", "macro_f1", "accuracy"])


def evaluate_predictions(test: pd.DataFrame, proba: np.ndarray, train: pd.DataFrame, *, labels: Sequence[str],
                         n_bootstrap: int, seed: int, min_group_rows: int) -> dict:
    """The full report: adapter scores (overall, per source, per outlet), calibration and both baselines.

    `test` and `train` have columns text, label, source, outlet; `proba` is `(len(test), len(labels))`.
    """
    labels = list(labels)
    if len(test) != len(proba):
        raise ValueError(f"{len(test)} test rows but {len(proba)} probability rows")
    scored = test.assign(prediction=[labels[i] for i in proba.argmax(1)])
    report = classification_scores(scored["label"], scored["prediction"], labels=labels)
    report["macro_f1_ci95"] = bootstrap_macro_f1(scored["label"], scored["prediction"], labels=labels,
                                                 n_resamples=n_bootstrap, seed=seed)
    report["ece"] = expected_calibration_error(proba, scored["label"].map(labels.index).to_numpy())
    report["labels"] = labels
    report["by_source"] = scores_by_group(scored, "source", labels=labels, min_rows=min_group_rows).to_dict("records")
    report["by_outlet"] = scores_by_group(scored, "outlet", labels=labels, min_rows=min_group_rows).to_dict("records")
    if "agreement" in scored:  # items every annotator agreed on (FPB's AllAgree subset): the cleanest labels
        # NaN agreement (a source that reports none, e.g. NewsMTSC) is unknown, so those rows are left out
        unanimous = scored[scored["agreement"].notna() & (scored["agreement"] >= 1.0)]
        report["unanimous_by_source"] = scores_by_group(unanimous, "source", labels=labels,
                                                        min_rows=min_group_rows).to_dict("records")
    report["baselines"] = {
        "majority_class": classification_scores(
            scored["label"], majority_baseline(train["label"], len(scored)), labels=labels),
        "tfidf_logreg": classification_scores(
            scored["label"], tfidf_baseline(train["text"], train["label"], scored["text"], seed=seed), labels=labels),
    }
    return report


def evaluate_adapter(adapter_dir: str, examples: pd.DataFrame, *, batch_size: int, device: str, n_bootstrap: int,
                     seed: int, min_group_rows: int) -> dict:
    """Score the adapter in `adapter_dir` on the test rows of `examples` (train rows feed the baselines).

    The one evaluation path for every adapter (the sentiment adapter, a distilled student): it predicts exactly
    as `training.predict_proba` does and adds, to `evaluate_predictions`' report, the scoring speed
    (`test_rows_per_second`) and the model size (`total_params`).
    """
    import time

    from opensentiment_pipeline.core.model import modeling, training

    test = examples[examples["split"] == "test"].reset_index(drop=True)
    train = examples[examples["split"] == "train"]
    if test.empty:
        raise ValueError("no test rows to evaluate on: sentiment_examples has no split == 'test'; give a source a "
                         "test split (split: test) or a test_size")
    dev = modeling.resolve_device(device)
    manifest, tokenizer, model = modeling.load_adapter(adapter_dir, device=dev)
    started = time.perf_counter()
    proba = training.predict_proba(model, tokenizer, test, manifest=manifest, batch_size=batch_size, device=str(dev))
    seconds = time.perf_counter() - started
    report = evaluate_predictions(test, proba, train, labels=manifest.labels, n_bootstrap=n_bootstrap, seed=seed,
                                  min_group_rows=min_group_rows)
    report["test_rows_per_second"] = len(test) / max(seconds, 1e-9)
    report["total_params"] = modeling.count_parameters(model)[1]
    return report


def side_by_side(metrics: dict[str, dict[str, float]]) -> pd.DataFrame:
    """One row per metric and one column per model (e.g. teacher, student), for metrics every model has.

    >>> side_by_side({"teacher": {"macro_f1": 0.9, "x": 1.0}, "student": {"macro_f1": 0.8}}).values.tolist()
    [['macro_f1', 0.9, 0.8]]
    """
    names = [n for n in next(iter(metrics.values())) if all(n in m for m in metrics.values())]
    return pd.DataFrame([{"metric": n, **{model: m[n] for model, m in metrics.items()}} for n in names])
