"""Turn merged labels into train / val / test examples for one task.

A source that fixes its split keeps it: train, val and test as ingestion normalised them (NewsMTSC's
train.jsonl vs devtest_rw.jsonl, a file's own "dev" column). Rows without one are split per source with a
stratified `train_test_split`, so e.g. Financial PhraseBank gets the usual 80/20 split with `random_state`
from config. Validation rows (for early stopping) are carved out of train only, and only for sources that
give no val rows of their own: test rows are never seen before evaluation.

Rows are split by sentence, not one by one: all rows whose text is the same after `normalise_text` (the
targets of one sentence, copies across sources) land on the same side, so a model is never tested on a
sentence it was trained on with another target. A row without a split whose sentence a source placed
follows that row.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.ingest.articles import normalise_text
from opensentiment_pipeline.core.schema import SPLITS

logger = logging.getLogger(__name__)

EXAMPLE_COLUMNS = ("article_id", "text", "target", "label", "weight", "agreement", "source", "outlet", "split")
_HELD_OUT_FIRST = {"test": 0, "val": 1, "train": 2}  # a sentence on several sides goes to the most held-out one


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


def _held_out_sentences(part: pd.DataFrame, *, size: float, seed: int) -> set[str]:
    """Sentence keys (`_sentence`) drawn for the held-out side, stratified on each sentence's first label."""
    sentences = part.drop_duplicates("_sentence")
    _, held_out = _stratified(sentences["label"], test_size=size, seed=seed)
    return set(sentences.loc[held_out, "_sentence"])


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
    examples["_sentence"] = examples["text"].map(normalise_text)
    given = examples["split"].astype(object).where(examples["split"].isin(SPLITS), None)
    split = _follow_sentences(given, examples["_sentence"], movable=given.isna())
    for _, part in examples[split.isna()].groupby("source", sort=True):
        test = _held_out_sentences(part, size=test_size, seed=seed)
        split.loc[part.index] = np.where(part["_sentence"].isin(test), "test", "train")
    own_val = set(examples.loc[given == "val", "source"])
    for source, part in examples[split == "train"].groupby("source", sort=True):
        if source not in own_val:
            val = _held_out_sentences(part, size=val_size, seed=seed)
            split.loc[part.index[part["_sentence"].isin(val)]] = "val"
    # Free copies of one sentence in two sources may have been drawn apart; rows a source placed stay put (a
    # published split is kept as published, even where it repeats a sentence across its sides).
    examples["split"] = _follow_sentences(split, examples["_sentence"], movable=given.isna())
    return examples[list(EXAMPLE_COLUMNS)].sort_values("article_id").reset_index(drop=True)


def _follow_sentences(split: pd.Series, sentences: pd.Series, *, movable: pd.Series) -> pd.Series:
    """`split` where each movable row takes the most held-out split any row of its sentence is on (None: none yet)."""
    rank = split.map(_HELD_OUT_FIRST)
    side = rank.groupby(sentences).transform("min")
    by_rank = {r: name for name, r in _HELD_OUT_FIRST.items()}
    followed = side.map(by_rank).astype(object).where(side.notna(), None)
    return split.where(~movable | followed.isna(), followed)
