"""Turn merged labels into train / val / test examples for one task.

A source that fixes its split (NewsMTSC's train.jsonl vs devtest_rw.jsonl) keeps it. Rows without one are
split per source with a stratified `train_test_split`, so e.g. Financial PhraseBank gets the usual 80/20
split with `random_state` from config. Validation rows (for early stopping) are carved out of train only:
test rows are never seen before evaluation.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

EXAMPLE_COLUMNS = ("article_id", "text", "target", "label", "weight", "agreement", "source", "outlet", "split")


def _stratified(labels: pd.Series, *, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (keep, held_out); stratified when every class has at least two rows."""
    from sklearn.model_selection import train_test_split

    index = labels.index.to_numpy()
    if len(index) < 2 or test_size <= 0:
        return index, index[:0]
    stratify = labels if labels.value_counts().min() >= 2 else None
    if stratify is None:
        logger.warning("a class has fewer than 2 rows in %d rows: splitting without stratification", len(index))
    keep, held_out = train_test_split(index, test_size=test_size, random_state=seed, stratify=stratify)
    return keep, held_out


def make_examples(articles: pd.DataFrame, merged: pd.DataFrame, *, task: str, test_size: float, val_size: float,
                  seed: int, weight_by_agreement: bool) -> pd.DataFrame:
    """Labelled examples with a split column ("train", "val", "test").

    `weight` is the item's agreement when `weight_by_agreement` (confident labels count more), else 1.
    """
    if not 0 <= test_size < 1 or not 0 < val_size < 1:
        raise ValueError(f"test_size must be in [0, 1) and val_size in (0, 1); got {test_size}, {val_size}")
    labelled = merged.loc[merged["task"] == task, ["article_id", "label", "agreement"]]
    if labelled.empty:
        raise ValueError(f"no merged labels for task {task!r}; tasks present: {sorted(merged['task'].unique())}")
    columns = ["article_id", "text", "target", "source", "outlet", "split"]
    examples = labelled.merge(articles[columns], on="article_id", how="inner", validate="one_to_one")
    examples["weight"] = examples["agreement"].fillna(1.0) if weight_by_agreement else 1.0
    split = examples["split"].astype(object).where(examples["split"].isin(["train", "test"]), None)
    for _, part in examples[split.isna()].groupby("source", sort=True):
        _, test_idx = _stratified(part["label"], test_size=test_size, seed=seed)
        split.loc[part.index] = "train"
        split.loc[test_idx] = "test"
    for _, part in examples[split == "train"].groupby("source", sort=True):
        _, val_idx = _stratified(part["label"], test_size=val_size, seed=seed)
        split.loc[val_idx] = "val"
    examples["split"] = split
    return examples[list(EXAMPLE_COLUMNS)].sort_values("article_id").reset_index(drop=True)
