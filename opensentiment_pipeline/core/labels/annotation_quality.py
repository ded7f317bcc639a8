"""How good are the merged labels? Two checks that need no new annotation work.

- `compare_with_experts`: aggregate crowd votes with each merging method and measure agreement (accuracy,
  Cohen's kappa) with the majority label of experts who labelled the same items (BABE SG1 vs MBIC).
- `flag_suspect_labels`: out-of-fold class probabilities from a cheap text model (TF-IDF + logistic
  regression), then cleanlab's `find_label_issues`, so annotators re-check the items whose label the rest
  of the data contradicts, most suspicious first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import cohen_kappa_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from threadpoolctl import threadpool_limits

from opensentiment_pipeline.core.ingest.sources import SourceSpec, read_source
from opensentiment_pipeline.core.labels.annotations import AGGREGATORS, VOTE_COLUMNS, majority_vote, votes_long
from opensentiment_pipeline.core.schema import TASK_LABELS

logger = logging.getLogger(__name__)

QUALITY_COLUMNS: tuple[str, ...] = ("method", "n_items", "accuracy", "cohen_kappa", "n_expert_ties")
SUSPECT_COLUMNS: tuple[str, ...] = (
    "article_id", "task", "text", "target", "label", "suggested_label", "label_quality", "agreement", "n_votes",
    "method", "rank",
)


@dataclass(frozen=True)
class SuspectResult:
    """`suspects` (SUSPECT_COLUMNS, sorted by task then rank; rank 1 = most likely mislabelled),
    `checked` {task: items cross-validated} and `skipped` {task: why it could not be checked}."""

    suspects: pd.DataFrame
    checked: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def read_votes(path: str, *, name: str) -> tuple[pd.DataFrame, int]:
    """The vote table (VOTE_COLUMNS) of one BABE/MBIC raw-annotation file, and how many vote rows it rejected.

    Items get content ids (`bias:<hash of the text>`), so the same sentence has the same id in SG1 and MBIC.
    """
    result = read_source(SourceSpec(name=name, format="babe_votes", path=path))
    return votes_long(result.articles), len(result.rejects)


def compare_with_experts(expert_votes: pd.DataFrame, crowd_votes: pd.DataFrame, *, methods: Sequence[str],
                         n_iter: int) -> pd.DataFrame:
    """Agreement of each method's crowd label with the expert majority label, on the items both labelled.

    Both tables have VOTE_COLUMNS; items match on (article_id, task). The expert label is the majority
    vote; items where two or more labels tie for the most expert votes have no expert label and are left
    out (`n_expert_ties` counts them), rather than letting the tie rule pick one. Crowd ties follow the
    method's own tie rule (see core/labels/annotations.py), because a merging method must always give a label.
    Each method aggregates *all* crowd votes (annotator reliability is learned from every item), then is
    scored on the overlap.

    Returns QUALITY_COLUMNS, one row per method in the given order: `n_items` (overlap without expert
    ties), `accuracy` (0-1 share of equal labels) and `cohen_kappa` (sklearn; NaN when only one label
    occurs in both label lists, where kappa is undefined).

    >>> e = pd.DataFrame({"article_id": ["a", "a", "b", "b"], "task": "bias", "annotator_id": ["x", "y"] * 2,
    ...                   "label": ["biased", "biased", "non-biased", "non-biased"]})
    >>> compare_with_experts(e, e, methods=["majority_vote"], n_iter=1).to_dict("records")
    [{'method': 'majority_vote', 'n_items': 2, 'accuracy': 1.0, 'cohen_kappa': 1.0, 'n_expert_ties': 0}]
    """
    methods = list(methods)
    unknown = sorted(set(methods) - set(AGGREGATORS))
    if not methods or unknown:
        raise ValueError(f"compare_with_experts: methods must be a non-empty subset of {sorted(AGGREGATORS)}; "
                         f"got {methods}")
    for name, votes in (("expert_votes", expert_votes), ("crowd_votes", crowd_votes)):
        missing = [c for c in VOTE_COLUMNS if c not in votes.columns]
        if missing:
            raise ValueError(f"compare_with_experts: {name} lacks columns {missing}; build it with votes_long()")
    experts = majority_vote(expert_votes).items
    tied = _top_label_tied(experts)
    expert_label = experts[~tied].set_index(["article_id", "task"])["label"]
    crowd_keys = pd.MultiIndex.from_frame(crowd_votes[["article_id", "task"]].drop_duplicates())
    overlap = expert_label.index.intersection(crowd_keys).sort_values()
    if not len(overlap):
        raise ValueError(f"compare_with_experts: no item has both an expert label and crowd votes "
                         f"({len(expert_label)} expert-labelled items without ties, {len(crowd_keys)} crowd items); "
                         "the files must hold the same sentences (ids are hashes of the text)")
    rows = []
    for method in methods:
        crowd = AGGREGATORS[method](crowd_votes, n_iter=n_iter).items.set_index(["article_id", "task"])["label"]
        truth, pred = expert_label[overlap].to_numpy(), crowd[overlap].to_numpy()
        rows.append({"method": method, "n_items": len(overlap), "accuracy": float(np.mean(truth == pred)),
                     "cohen_kappa": _kappa(truth, pred), "n_expert_ties": int(tied.sum())})
        logger.info("compare_with_experts: %s", rows[-1])
    return pd.DataFrame(rows, columns=list(QUALITY_COLUMNS))


def best_method(report: pd.DataFrame) -> str | None:
    """The method of a `compare_with_experts` report with the highest Cohen's kappa (chance-corrected, so a
    method cannot win by leaning towards the majority class); None when kappa is NaN for every method."""
    scored = report.dropna(subset=["cohen_kappa"])
    return None if scored.empty else str(scored.loc[scored["cohen_kappa"].idxmax(), "method"])


def flag_suspect_labels(merged: pd.DataFrame, articles: pd.DataFrame, *, n_folds: int, seed: int) -> SuspectResult:
    """Run `find_suspect_labels` on every task of the merged table; tasks too small to check are skipped.

    `merged` has article_id, task, label, agreement, n_votes, method (the merged_annotations table);
    `articles` gives each article_id its `text` and `target`. A task is skipped, with the reason in
    `SuspectResult.skipped` and a logged warning, when it has one class only or a class with fewer than
    `n_folds` items (stratified folds need one item of each class per fold).
    """
    _check_n_folds(n_folds)
    needed = {"merged": ("article_id", "task", "label", "agreement", "n_votes", "method"),
              "articles": ("article_id", "text", "target")}
    for name, frame in (("merged", merged), ("articles", articles)):
        missing = [c for c in needed[name] if c not in frame.columns]
        if missing:
            raise ValueError(f"flag_suspect_labels: {name} lacks columns {missing}; got {list(frame.columns)}")
    texts = articles.drop_duplicates("article_id").set_index("article_id")[["text", "target"]]
    no_text = merged.loc[~merged["article_id"].isin(texts.index), "article_id"]
    if len(no_text):
        raise ValueError(f"flag_suspect_labels: {len(no_text)} merged items have no article text, e.g. "
                         f"{no_text.head(3).tolist()}; pass the raw_articles table the labels were merged from")
    items = merged[list(needed["merged"])].join(texts, on="article_id")
    parts, checked, skipped = [], {}, {}
    for task, group in items.groupby("task", sort=True):
        reason = too_small_reason(group["label"], n_folds=n_folds)
        if reason:
            logger.warning("flag_suspect_labels: skipping task %r: %s", task, reason)
            skipped[str(task)] = reason
            continue
        parts.append(find_suspect_labels(group, labels=TASK_LABELS[task], n_folds=n_folds, seed=seed))
        checked[str(task)] = len(group)
    suspects = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    suspects = suspects.reindex(columns=list(SUSPECT_COLUMNS)).astype(
        {"label_quality": float, "agreement": float, "n_votes": int, "rank": int})  # typed even when empty
    return SuspectResult(suspects, checked, skipped)


def find_suspect_labels(items: pd.DataFrame, *, labels: Sequence[str], n_folds: int, seed: int) -> pd.DataFrame:
    """Items of one task whose label the out-of-fold predictions contradict, most suspicious first.

    `items` has `text`, `label` and optionally `target` (a mention, prepended to the text for the model)
    plus any other columns, which are kept. `labels` is the task's label space (TASK_LABELS[task]); classes
    absent from `items` are left out of the model. Probabilities come from `text_classifier` under
    `n_folds`-fold StratifiedKFold (shuffled with `seed`), so no item is scored by a model that saw it.

    Returns the flagged rows of `items` plus `suggested_label` (the model's most likely class),
    `label_quality` (cleanlab self-confidence: predicted probability of the given label, 0-1, lower = more
    suspicious) and `rank` (1 = most suspicious). Raises ValueError when `too_small_reason` gives one.
    """
    _check_n_folds(n_folds)
    reason = too_small_reason(items["label"], n_folds=n_folds)
    if reason:
        raise ValueError(f"find_suspect_labels: cannot cross-validate: {reason}")
    unknown = sorted(set(items["label"]) - set(labels))
    if unknown:
        raise ValueError(f"find_suspect_labels: labels {unknown} are not in the label space {list(labels)}")
    classes = [lab for lab in labels if lab in set(items["label"])]
    y = items["label"].map({lab: i for i, lab in enumerate(classes)}).to_numpy()
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    # One thread: these fits take milliseconds, and OpenMP's thread start-up and spin-waiting made them 30x
    # slower (1.4 s instead of 0.05 s per fit on the 300-item demo, on a busy 2-core machine).
    with threadpool_limits(limits=1):
        pred_probs = cross_val_predict(text_classifier(seed=seed), model_inputs(items), y, cv=folds,
                                       method="predict_proba")  # (n_items, n_classes)
    # n_jobs=1: cleanlab otherwise starts a process pool, which costs more than it saves at this size
    # and misbehaves inside Dagster's own subprocesses.
    flagged = find_label_issues(y, pred_probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    quality = get_label_quality_scores(y, pred_probs, method="self_confidence")
    return items.iloc[flagged].assign(
        suggested_label=np.asarray(classes, dtype=object)[pred_probs[flagged].argmax(axis=1)],
        label_quality=quality[flagged], rank=np.arange(1, len(flagged) + 1),
    ).reset_index(drop=True)


def text_classifier(*, seed: int) -> Pipeline:
    """TF-IDF over word 1-2 grams + L2 logistic regression (sklearn's default C=1): cheap, deterministic, and
    calibrated enough for cleanlab, which compares each item's probabilities with per-class thresholds.

    On Financial PhraseBank it flags 24 % of the sentences whose annotators agreed only 50 % and 4.6 % of the
    unanimous ones; C=10 flagged a few more of both (28 % / 4.9 %).
    """
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                         LogisticRegression(C=1.0, max_iter=2000, random_state=seed))


def model_inputs(items: pd.DataFrame) -> list[str]:
    """The text the model sees: `target | text` when the item names a target mention, else the text."""
    if "target" not in items.columns:
        return items["text"].astype(str).tolist()
    return [f"{t} | {x}" if isinstance(t, str) and t else str(x) for t, x in zip(items["target"], items["text"])]


def too_small_reason(labels: pd.Series, *, n_folds: int) -> str | None:
    """Why `labels` cannot be cross-validated with `n_folds` stratified folds, or None when they can."""
    counts = labels.value_counts()
    if len(counts) < 2:
        return f"only {len(counts)} class ({sorted(counts.index)}); a label model needs at least 2"
    rare = counts[counts < n_folds]
    if len(rare):
        return (f"class(es) {rare.sort_index().to_dict()} have fewer than n_folds={n_folds} items; stratified "
                "folds need at least n_folds per class (lower n_folds or add labels)")
    return None


def _top_label_tied(items: pd.DataFrame) -> pd.Series:
    """True where two or more labels share the highest posterior (vote share for majority vote)."""
    tied = pd.Series(False, index=items.index)
    for task, group in items.groupby("task"):
        p = group[[f"p_{lab}" for lab in TASK_LABELS[task]]].to_numpy(dtype=float)
        tied[group.index] = np.isclose(p, p.max(axis=1, keepdims=True), rtol=0.0, atol=1e-9).sum(axis=1) > 1
    return tied


def _kappa(truth: np.ndarray, pred: np.ndarray) -> float:
    if len(set(truth) | set(pred)) < 2:  # chance agreement is 1: kappa is 0/0
        return float("nan")
    return float(cohen_kappa_score(truth, pred))


def _check_n_folds(n_folds: int) -> None:
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 2:
        raise ValueError(f"n_folds must be an int >= 2 (cross-validation folds), got {n_folds!r}")
