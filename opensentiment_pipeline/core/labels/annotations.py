"""Turn raw annotator votes into one label per item, and measure how much the annotators agree.

The flow is `votes_long` (explode and validate the `votes` lists of the article table) -> an aggregator
(`majority_vote`, `dawid_skene`, `one_coin_dawid_skene`) -> `merge_annotations`, which also lets gold
labels from the source through. `agreement_stats` reports Krippendorff's alpha and Fleiss' kappa.

Tie rule (every method): when several labels share the highest score, sentiment prefers "neutral" if it is
among them, because a tie that involves "neutral" means half the annotators saw no polarity and asserting
one would overstate the signal; otherwise the label that comes first in `TASK_LABELS[task]` wins. The rule
only depends on the scores, so results do not depend on row order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import krippendorff
import numpy as np
import pandas as pd

from opensentiment_pipeline.core.schema import MERGED_COLUMNS, TASK_LABELS, check_labels

logger = logging.getLogger(__name__)

VOTE_COLUMNS: tuple[str, ...] = ("article_id", "task", "annotator_id", "label")
# One posterior column per label of every task, so the merged table has the same columns whatever tasks
# a run contains; label names are distinct across tasks, and a column is NaN for rows of other tasks.
POSTERIOR_COLUMNS: tuple[str, ...] = tuple(f"p_{lab}" for labels in TASK_LABELS.values() for lab in labels)
ITEM_COLUMNS: tuple[str, ...] = (
    "article_id", "task", "label", "agreement", "n_votes", *POSTERIOR_COLUMNS, "entropy"
)
ANNOTATOR_COLUMNS: tuple[str, ...] = ("task", "annotator_id", "n_votes", "accuracy")
TIE_PREFERENCE: dict[str, str] = {"sentiment": "neutral"}
_TIE_ATOL = 1e-9  # EM posteriors of symmetric items differ in the last bits; treat those as ties


@dataclass(frozen=True)
class Aggregation:
    """What an aggregator returns.

    `items` has ITEM_COLUMNS, one row per (article_id, task), sorted by article_id: `label`; `agreement`,
    the share of votes for `label`; `n_votes`; `p_<label>`, the posterior (vote shares for majority vote);
    `entropy` of that posterior in nats. `annotators` has ANNOTATOR_COLUMNS with a 0-1 `accuracy`: the share
    of votes equal to the majority label (majority vote), the prior-weighted diagonal of the fitted
    confusion matrix (Dawid-Skene), or the fitted skill (one-coin Dawid-Skene).
    """

    items: pd.DataFrame
    annotators: pd.DataFrame


@dataclass(frozen=True)
class MergeResult:
    """The merged table (MERGED_COLUMNS + POSTERIOR_COLUMNS + entropy) and what was left out.

    `dropped_thin`: items whose label would come from fewer than `min_votes` votes. `dropped_unlabelled`:
    items with neither votes nor a gold label. `stats` repeats both and counts the label origins.
    """

    merged: pd.DataFrame
    annotators: pd.DataFrame
    dropped_thin: int
    dropped_unlabelled: int
    stats: dict[str, int] = field(default_factory=dict)


def votes_long(articles: pd.DataFrame) -> pd.DataFrame:
    """Explode the article table's `votes` lists into one row per vote (VOTE_COLUMNS), sorted.

    `votes` may hold lists or numpy arrays of {"annotator_id", "label"} dicts (arrays come back from
    Parquet); None/NaN counts as no votes. Raises ValueError naming the article and annotator for a vote
    without an annotator_id or label, two votes by one annotator on one item, or a label outside
    TASK_LABELS[task].
    """
    _require_columns(articles, ("article_id", "task", "votes"), where="votes_long", fix="pass the article table")
    rows = []
    for article_id, task, votes in articles[["article_id", "task", "votes"]].itertuples(index=False):
        if votes is None or (isinstance(votes, float) and np.isnan(votes)):
            continue
        for vote in votes:
            if not isinstance(vote, Mapping):
                raise ValueError(f"votes_long: article_id={article_id!r} has a vote {vote!r} that is not a dict; "
                                 'expected {"annotator_id": str, "label": str}')
            annotator, label = vote.get("annotator_id"), vote.get("label")
            for name, value in (("annotator_id", annotator), ("label", label)):
                if not isinstance(value, str) or not value.strip():
                    raise ValueError(f"votes_long: article_id={article_id!r} has a vote with missing {name} "
                                     f"(got {vote!r}); every vote needs a non-empty annotator_id and label")
            rows.append((article_id, task, annotator, label))
    long = pd.DataFrame(rows, columns=list(VOTE_COLUMNS), dtype=object)
    dup = long[long.duplicated(["article_id", "annotator_id"], keep=False)]
    if len(dup):
        first = dup.iloc[0]
        raise ValueError(f"votes_long: duplicate votes by annotator_id={first.annotator_id!r} on "
                         f"article_id={first.article_id!r} ({len(dup)} duplicate vote rows in all); keep one vote per "
                         "annotator and item, e.g. the latest, at ingestion")
    for task, group in long.groupby("task", sort=True):
        first = group.iloc[0]
        if task not in TASK_LABELS:
            raise ValueError(f"votes_long: unknown task {task!r} at article_id={first.article_id!r}; expected one "
                             f"of {sorted(TASK_LABELS)}")
        bad = group[~group["label"].isin(TASK_LABELS[task])]
        if len(bad):
            first = bad.iloc[0]
            raise ValueError(f"votes_long: unknown labels {sorted(set(bad['label']))} for task {task!r} (first at "
                             f"article_id={first.article_id!r}, annotator_id={first.annotator_id!r}); expected a "
                             f"subset of {list(TASK_LABELS[task])}. Map them with the source's `label_map` or "
                             "extend TASK_LABELS in core/schema.py")
    return long.sort_values(["task", "article_id", "annotator_id"], ignore_index=True)


def majority_vote(votes: pd.DataFrame) -> Aggregation:
    """Label each item with its most frequent vote; posteriors are vote shares. Ties: see the module doc.

    >>> v = pd.DataFrame({"article_id": ["a"] * 3, "task": "sentiment", "annotator_id": ["x", "y", "z"],
    ...                   "label": ["positive", "positive", "negative"]})
    >>> majority_vote(v).items[["label", "agreement", "n_votes"]].values.tolist()
    [['positive', 0.6666666666666666, 3]]
    """
    _require_votes(votes, where="majority_vote")
    parts, annotators = [], []
    for task, group in votes.groupby("task", sort=True):
        counts = _vote_counts(group, task)
        items = _items_frame(task, counts.div(counts.sum(axis=1), axis=0), counts)
        parts.append(items)
        winner = group["article_id"].map(items.set_index("article_id")["label"])
        hit = pd.Series(group["label"].to_numpy() == winner.to_numpy(), dtype=float)
        annotators.append(_annotators_frame(task, group, hit.groupby(group["annotator_id"].to_numpy()).mean()))
    return _aggregation(parts, annotators)


def dawid_skene(votes: pd.DataFrame, *, n_iter: int) -> Aggregation:
    """Dawid-Skene EM (crowd-kit), one model per task: learns a confusion matrix per annotator, so votes of
    reliable annotators outweigh those of annotators who label at random or always give the same label.

    crowd-kit starts EM from majority-vote shares and has no random step, so there is no seed; `n_iter` is
    the maximum number of EM iterations (it stops earlier once the lower bound changes by < 1e-5).
    """
    return _fit_crowdkit(votes, one_coin=False, n_iter=n_iter, where="dawid_skene")


def one_coin_dawid_skene(votes: pd.DataFrame, *, n_iter: int) -> Aggregation:
    """One-coin Dawid-Skene (crowd-kit): one accuracy per annotator, errors spread evenly over other labels.

    Needs fewer parameters than full Dawid-Skene, so it is steadier on small sets, but it assumes symmetric
    errors: annotators who always give the same label agree with each other and can look skilled.
    """
    return _fit_crowdkit(votes, one_coin=True, n_iter=n_iter, where="one_coin_dawid_skene")


AGGREGATORS: dict[str, Callable[..., Aggregation]] = {
    "majority_vote": lambda votes, *, n_iter: majority_vote(votes),  # n_iter has no effect here
    "dawid_skene": dawid_skene,
    "one_coin_dawid_skene": one_coin_dawid_skene,
}


def merge_annotations(articles: pd.DataFrame, *, method: str, min_votes: int, n_iter: int) -> MergeResult:
    """One label per item: aggregated votes, or the source's gold label, which overrides votes.

    Votes of every item (thin ones too, since they still inform annotator reliability) are aggregated per
    task with `method` (a key of AGGREGATORS; `n_iter` is used by the EM methods). Then:
    - gold label, no votes: method "gold", n_votes 0, agreement = the source's `agreement`, NaN when the source
      gives none (not measured: a made-up 1.0 would count every such item as unanimous); posteriors and entropy NaN;
    - gold label and votes: method "gold" with the gold label; n_votes, posteriors and entropy come from the
      votes, and agreement is the share of votes for the gold label; `min_votes` does not apply;
    - votes only: dropped (counted in `dropped_thin`) when n_votes < min_votes;
    - neither: dropped (counted in `dropped_unlabelled`).
    The result is sorted by article_id.
    """
    if method not in AGGREGATORS:
        raise ValueError(f"merge_annotations: unknown method {method!r}; expected one of {sorted(AGGREGATORS)}")
    if isinstance(min_votes, bool) or not isinstance(min_votes, int) or min_votes < 1:
        raise ValueError(f"merge_annotations: min_votes must be an int >= 1, got {min_votes!r}")
    _require_columns(articles, ("article_id", "task", "label", "agreement", "votes"), where="merge_annotations",
                     fix="pass the article table (schema.ARTICLE_COLUMNS)")
    dup_ids = articles["article_id"][articles["article_id"].duplicated()]
    if len(dup_ids):
        raise ValueError(f"merge_annotations: duplicate article_id {sorted(set(dup_ids))[:5]}; ids must be unique, "
                         "deduplicate the article table first")
    for task, group in articles.groupby("task", sort=True):
        check_labels(group["label"], task, where="merge_annotations (gold labels)")
    long = votes_long(articles)
    aggregation = AGGREGATORS[method](long, n_iter=n_iter)
    items = aggregation.items.set_index("article_id")
    source = articles.set_index("article_id")
    gold = source["label"]
    has_gold, has_votes = gold.notna(), source.index.isin(items.index)

    voted = items.assign(method=method)
    overridden = voted.index[gold.reindex(voted.index).notna()]
    voted.loc[overridden, "label"] = gold[overridden]
    voted.loc[overridden, "method"] = "gold"
    voted.loc[overridden, "agreement"] = _share_for(long, gold[overridden])
    thin = (voted["n_votes"] < min_votes) & (voted["method"] != "gold")
    gold_only = source[has_gold & ~has_votes]
    gold_rows = pd.DataFrame({"task": gold_only["task"], "label": gold_only["label"],
                              "agreement": gold_only["agreement"].astype(float), "n_votes": 0,
                              "method": "gold"}, index=gold_only.index)

    # concat skips empty parts: pandas 2.x warns that all-NA parts will soon change the result dtypes
    parts = [part for part in (voted[~thin], gold_rows) if len(part)]
    merged = (pd.concat(parts) if parts else voted).rename_axis("article_id").reset_index()
    merged = merged.reindex(columns=[*MERGED_COLUMNS, *POSTERIOR_COLUMNS, "entropy"])
    merged = merged.astype({"agreement": float, "n_votes": int, **{c: float for c in POSTERIOR_COLUMNS},
                            "entropy": float}).sort_values("article_id", ignore_index=True)
    stats = {"n_merged": len(merged), "n_from_votes": int((merged["method"] == method).sum()),
             "n_gold_only": len(gold_rows), "n_gold_overrides": len(overridden),
             "dropped_thin": int(thin.sum()), "dropped_unlabelled": int((~has_gold & ~has_votes).sum())}
    logger.info("merge_annotations(%s): %s", method, stats)
    return MergeResult(merged, aggregation.annotators, stats["dropped_thin"], stats["dropped_unlabelled"], stats)


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa from an (n_items, n_labels) matrix of vote counts; NaN when undefined.

    Items may have different numbers of votes: the per-item agreement is P_i = (sum_j n_ij^2 - n_i) /
    (n_i (n_i - 1)) over items with n_i >= 2, and label shares p_j pool the votes of those items. With a
    fixed number of raters this is the textbook formula (Fleiss 1971). NaN when no item has two votes or
    every vote has the same label (chance agreement is 1).
    """
    counts = np.asarray(counts, dtype=float)
    n = counts.sum(axis=1)
    counts, n = counts[n >= 2], n[n >= 2]
    if not len(n):
        return float("nan")
    p_bar = np.mean(((counts**2).sum(axis=1) - n) / (n * (n - 1)))
    p_e = ((counts.sum(axis=0) / n.sum()) ** 2).sum()
    return float("nan") if np.isclose(p_e, 1.0) else float((p_bar - p_e) / (1 - p_e))


def agreement_stats(votes: pd.DataFrame) -> dict[str, float]:
    """Inter-annotator agreement per task: krippendorff_alpha (nominal), fleiss_kappa, mean_item_agreement
    (mean majority-vote share), mean_votes_per_item, n_voted_items, n_annotators.

    With several tasks the keys are prefixed `<task>_`. Alpha and kappa are NaN when undefined: no item with
    two votes, or only one label among such items. An empty vote table gives an empty dict.
    """
    _require_votes(votes, where="agreement_stats")
    per_task = {}
    for task, group in votes.groupby("task", sort=True):
        counts = _vote_counts(group, task)
        pairable = counts[counts.sum(axis=1) >= 2]
        alpha = float("nan")
        if (pairable.sum(axis=0) > 0).sum() >= 2:  # alpha's expected disagreement is 0 with one label
            codes = group["label"].map({lab: i for i, lab in enumerate(TASK_LABELS[task])}).astype(float)
            reliability = group.assign(code=codes).pivot(index="annotator_id", columns="article_id", values="code")
            alpha = float(krippendorff.alpha(reliability_data=reliability.to_numpy(),
                                             value_domain=list(range(len(TASK_LABELS[task]))),
                                             level_of_measurement="nominal"))
        per_task[task] = {"krippendorff_alpha": alpha, "fleiss_kappa": fleiss_kappa(counts.to_numpy()),
                          "mean_item_agreement": float(majority_vote(group).items["agreement"].mean()),
                          "mean_votes_per_item": float(counts.sum(axis=1).mean()),
                          "n_voted_items": float(len(counts)), "n_annotators": float(group["annotator_id"].nunique())}
    if len(per_task) == 1:
        return next(iter(per_task.values()))
    return {f"{task}_{key}": value for task, stats in per_task.items() for key, value in stats.items()}


def _fit_crowdkit(votes: pd.DataFrame, *, one_coin: bool, n_iter: int, where: str) -> Aggregation:
    # Imported here: crowdkit.aggregation pulls in nltk and scipy.stats (~2.5 s), which would otherwise slow
    # every import of this module, e.g. loading the Dagster definitions or a majority-vote-only run.
    from crowdkit.aggregation import DawidSkene, OneCoinDawidSkene

    _check_n_iter(n_iter)
    _require_votes(votes, where=where)
    model = OneCoinDawidSkene(n_iter=n_iter) if one_coin else DawidSkene(n_iter=n_iter)
    parts, annotators = [], []
    for task, group in votes.groupby("task", sort=True):
        data = pd.DataFrame({"task": group["article_id"], "worker": group["annotator_id"], "label": group["label"]})
        probas = model.fit_predict_proba(data.sort_values(["task", "worker"], ignore_index=True))
        counts = _vote_counts(group, task)
        posterior = probas.reindex(index=counts.index, columns=counts.columns, fill_value=0.0)  # unseen labels: 0
        parts.append(_items_frame(task, posterior, counts))
        if one_coin:
            accuracy = model.skills_
        else:  # P(annotator is right) = sum_c prior_c * P(says c | true c); unseen (worker, c) rows are 0
            diag = {(w, lab): model.errors_.loc[(w, lab), lab] for w, lab in model.errors_.index}
            accuracy = pd.Series(diag).mul(model.priors_, level=1).groupby(level=0).sum()
        annotators.append(_annotators_frame(task, group, accuracy))
    return _aggregation(parts, annotators)


def _vote_counts(group: pd.DataFrame, task: str) -> pd.DataFrame:
    """(n_items, n_labels) vote counts indexed by sorted article_id, columns in TASK_LABELS[task] order."""
    counts = pd.crosstab(group["article_id"], group["label"])
    return counts.reindex(columns=list(TASK_LABELS[task]), fill_value=0).sort_index()


def _items_frame(task: str, posterior: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    labels = list(TASK_LABELS[task])
    p = posterior[labels].to_numpy(dtype=float)  # (n_items, n_labels), rows sum to 1
    tied = np.isclose(p, p.max(axis=1, keepdims=True), rtol=0.0, atol=_TIE_ATOL)
    pick = tied.argmax(axis=1)  # first tied label in TASK_LABELS order
    if task in TIE_PREFERENCE:
        preferred = labels.index(TIE_PREFERENCE[task])
        pick = np.where(tied[:, preferred], preferred, pick)
    n_votes = counts.sum(axis=1).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = 0.0 - np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=1)  # 0.0 - avoids -0.0
    frame = pd.DataFrame({"article_id": counts.index, "task": task, "label": np.array(labels, dtype=object)[pick],
                          "agreement": counts.to_numpy()[np.arange(len(pick)), pick] / n_votes, "n_votes": n_votes})
    for j, lab in enumerate(labels):
        frame[f"p_{lab}"] = p[:, j]
    frame["entropy"] = entropy
    return frame


def _annotators_frame(task: str, group: pd.DataFrame, accuracy: pd.Series) -> pd.DataFrame:
    n_votes = group.groupby("annotator_id").size()
    return pd.DataFrame({"task": task, "annotator_id": n_votes.index, "n_votes": n_votes.to_numpy(),
                         "accuracy": accuracy.reindex(n_votes.index).to_numpy(dtype=float)})


def _aggregation(parts: list[pd.DataFrame], annotators: list[pd.DataFrame]) -> Aggregation:
    items = pd.concat(parts) if parts else pd.DataFrame(columns=list(ITEM_COLUMNS))
    items = items.reindex(columns=list(ITEM_COLUMNS))
    frame = pd.concat(annotators) if annotators else pd.DataFrame(columns=list(ANNOTATOR_COLUMNS))
    return Aggregation(items.astype({"n_votes": int}).sort_values(["article_id", "task"], ignore_index=True),
                       frame.sort_values(["task", "annotator_id"], ignore_index=True))


def _share_for(long: pd.DataFrame, labels: pd.Series) -> pd.Series:
    """Share of each item's votes that equal `labels` (indexed by article_id)."""
    votes = long[long["article_id"].isin(labels.index)]
    hit = votes["label"].to_numpy() == votes["article_id"].map(labels).to_numpy()
    return pd.Series(hit, dtype=float).groupby(votes["article_id"].to_numpy()).mean().reindex(labels.index)


def _check_n_iter(n_iter: int) -> None:
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1:
        raise ValueError(f"n_iter must be an int >= 1 (maximum EM iterations), got {n_iter!r}")


def _require_votes(votes: pd.DataFrame, *, where: str) -> None:
    _require_columns(votes, VOTE_COLUMNS, where=where, fix="build the vote table with votes_long(articles)")


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], *, where: str, fix: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing}; got {list(frame.columns)}. Fix: {fix}")
