"""Knowledge distillation: a large teacher adapter labels text softly, a small student learns from it.

The teacher (e.g. LoRA on all-mpnet-base-v2) is the more accurate model, the student (LoRA on
all-MiniLM-L6-v2) the one cheap enough to embed every article every night. The student learns from the
teacher's class probabilities on the labelled training rows *and* on unlabelled news, which carries the
teacher's knowledge beyond the human-labelled sentences. Test rows are never shown to the teacher here, and
validation rows keep their human labels only, so the student's epoch is still chosen on human judgement.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from opensentiment_pipeline.core.model import modeling, training
from opensentiment_pipeline.core.schema import title_and_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistillationSet:
    """What a student trains on: the examples with the teacher's soft labels, and where they came from."""

    examples: pd.DataFrame  # train/val rows of the examples plus the unlabelled pool, soft_<label> columns
    unlabelled_rows: int
    teacher_base_model: str


def distillation_set(teacher_dir: str, examples: pd.DataFrame, articles: pd.DataFrame, *, temperature: float,
                     batch_size: int, unlabelled_limit: int, seed: int, device: str) -> DistillationSet:
    """The teacher in `teacher_dir` labels the train rows of `examples` and up to `unlabelled_limit` articles that
    are no example (`unlabelled_pool`), softly at `temperature`; `student_examples` joins them for training."""
    manifest, tokenizer, teacher = modeling.load_adapter(teacher_dir, device=device)
    train_rows = examples[examples["split"] == "train"]
    pool = unlabelled_pool(articles, examples, limit=unlabelled_limit, seed=seed)
    logger.info("teacher labels %d train rows and %d unlabelled articles", len(train_rows), len(pool))
    teach = dict(manifest=manifest, temperature=temperature, batch_size=batch_size, device=device)
    train_soft = teacher_probabilities(teacher, tokenizer, train_rows, progress="teacher: train rows", **teach)
    pool_soft = teacher_probabilities(teacher, tokenizer, pool, progress="teacher: unlabelled", **teach)
    frame = student_examples(examples, train_soft, pool, pool_soft, labels=manifest.labels)
    return DistillationSet(examples=frame, unlabelled_rows=len(pool), teacher_base_model=manifest.base_model)


def teacher_probabilities(model, tokenizer, frame: pd.DataFrame, *, manifest: modeling.AdapterManifest,
                          temperature: float, batch_size: int, device: str, progress: str | None = None) -> np.ndarray:
    """The teacher's class probabilities `(n, n_labels)`, softened by `temperature` (> 1 spreads them); a
    progress bar titled `progress` when given (an mpnet teacher labels ~20 rows/s on 2 CPU cores)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    dev = modeling.resolve_device(device)
    encoded = training.encode_examples(frame.assign(label=manifest.labels[0]), tokenizer, labels=manifest.labels,
                                       max_length=manifest.max_length, pair_input=manifest.pair_input)
    logits = training.predict_logits(model, encoded, batch_size=batch_size, pad_id=tokenizer.pad_token_id, device=dev,
                                     progress=progress)
    return torch.softmax(torch.from_numpy(logits) / temperature, dim=1).numpy()


def unlabelled_pool(articles: pd.DataFrame, examples: pd.DataFrame, *, limit: int, seed: int,
                    max_chars: int = 1000) -> pd.DataFrame:
    """Article texts that are not sentiment examples, as plain-sentence rows for distillation.

    Title and the start of the body, cut at `max_chars` (the student reads at most its `max_length` tokens
    anyway). Rows whose text is also an example's text are dropped, so no test sentence enters through here.
    """
    seen = set(examples["text"].astype(str).str.strip().str.lower())
    text = pd.Series(title_and_text(articles), index=articles.index).str.strip(". ").str.slice(0, max_chars)
    pool = pd.DataFrame({"article_id": articles["article_id"].astype(str), "text": text,
                         "source": articles.get("source", "unlabelled"), "outlet": articles.get("outlet", "unknown")})
    pool = pool[(pool["text"].str.len() > 0) & ~pool["text"].str.strip().str.lower().isin(seen)]
    if "article_id" in examples:
        pool = pool[~pool["article_id"].isin(set(examples["article_id"].astype(str)))]
    if len(pool) > limit:
        pool = pool.sample(n=limit, random_state=seed)
    return pool.reset_index(drop=True)


def student_examples(examples: pd.DataFrame, train_proba: np.ndarray, pool: pd.DataFrame, pool_proba: np.ndarray,
                     *, labels: Sequence[str]) -> pd.DataFrame:
    """Training frame for the student: labelled train rows and the unlabelled pool with soft targets, val as is.

    `train_proba` holds the teacher's probabilities for `examples`' train rows in their order; test rows are
    dropped (the student is evaluated on them later, like the teacher).
    """
    columns = training.soft_columns(labels)
    train = examples[examples["split"] == "train"]
    if len(train) != len(train_proba) or len(pool) != len(pool_proba):
        raise ValueError(f"teacher probabilities do not match the rows: {len(train_proba)} for {len(train)} train rows, "
                         f"{len(pool_proba)} for {len(pool)} unlabelled rows")
    val = examples[examples["split"] == "val"]
    parts = [train.assign(**dict(zip(columns, train_proba.T, strict=True))),
             pool.assign(label=None, split="train", target=None, weight=1.0,
                         **dict(zip(columns, pool_proba.T, strict=True))),
             val.assign(**{c: np.nan for c in columns})]
    return pd.concat(parts, ignore_index=True)


def agreement_with_teacher(student_proba: np.ndarray, teacher_proba: np.ndarray) -> float:
    """Share of rows where student and teacher pick the same class."""
    return float((student_proba.argmax(1) == teacher_proba.argmax(1)).mean()) if len(student_proba) else float("nan")
