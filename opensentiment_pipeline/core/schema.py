"""Column names, label sets and small result types shared by every stage of the pipeline.

One normalised article table (`ARTICLE_COLUMNS`) flows from ingestion to clustering. Each row is one
annotatable item: a whole article, a headline, or a sentence (with an optional `target` mention for
target-dependent sentiment such as NewsMTSC).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd

SENTIMENT_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
BIAS_LABELS: tuple[str, ...] = ("biased", "non-biased")

# A task names a label space. Every vote and every gold label belongs to one task, so bias votes (BABE)
# and sentiment labels (NewsMTSC, Financial PhraseBank, the demo corpus) can share one article table.
TASK_LABELS: dict[str, tuple[str, ...]] = {"sentiment": SENTIMENT_LABELS, "bias": BIAS_LABELS}

# Split values a source may give, after case-folding and stripping, and what each is stored as. Anything
# else is rejected at ingestion, so a "Test" or "dev" row is never silently re-split into train.
SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLIT_ALIASES: dict[str, str] = {"train": "train", "val": "val", "dev": "val", "validation": "val", "test": "test"}

# The normalised article table. `votes` holds the raw per-annotator labels as a list of
# {"annotator_id": str, "label": str} dicts (empty when the source has none); `label` is a gold label the
# source itself gives (NewsMTSC, FPB), already mapped into TASK_LABELS[task].
ARTICLE_COLUMNS: tuple[str, ...] = (
    "article_id",  # str, unique; the source's id, or a content hash when it has none
    "outlet",  # str, normalised (lower-case, single spaces); "unknown" when the source names none
    "published_at",  # datetime64[ns, UTC], NaT when unknown
    "title",  # str, "" when none
    "text",  # str, never empty
    "source",  # str, the configured name of the source the row came from
    "split",  # one of SPLITS when the source fixes it, else None
    "target",  # str mention for target-dependent sentiment, else None
    "task",  # key of TASK_LABELS
    "label",  # gold label from the source, else None
    "agreement",  # float 0-1 the source reports for `label` (FPB agreement level), else NaN
    "leaning",  # outlet leaning given by the source ("left" / "center" / "right"), else None
    "topic",  # topic label given by the source (ABP's `topic`, e.g. "elections"), else None
    "votes",  # list[dict] of raw annotator votes
)

# One row per rejected input row: where it was, which field failed and why. `published_at` is the row's
# publish date when it could be read (datetime64[ns, UTC], else NaT): the day the reject is filed under.
REJECT_COLUMNS: tuple[str, ...] = ("source", "file", "row", "field", "reason", "value", "published_at")

# One label per item, from votes (majority vote, Dawid-Skene, ...) or passed through from the source.
MERGED_COLUMNS: tuple[str, ...] = (
    "article_id",
    "task",
    "label",
    "agreement",  # share of votes for the chosen label (1.0 for single gold labels unless the source says less)
    "n_votes",  # number of raw votes; 0 for a gold label the source gave without votes
    "method",  # "majority_vote", "dawid_skene", ... or "gold"
)

MetricsLogger = Callable[[Mapping[str, float], int], None]
"""Callback `log_metrics(metrics, step)`; the Dagster layer passes MLflow's logger, tests a list.append."""


def ignore_metrics(metrics: Mapping[str, float], step: int) -> None:
    """The default MetricsLogger: drops everything."""


@dataclass(frozen=True)
class IngestResult:
    """Normalised rows and the rows set aside, with the reason for each."""

    articles: pd.DataFrame  # ARTICLE_COLUMNS
    rejects: pd.DataFrame  # REJECT_COLUMNS
    duplicates_dropped: int = 0
    # Per source: items read (before `limit`) plus distinct rejected rows, the denominator of its rejected share.
    rows_read: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    """What `train_adapter` measured; the adapter itself is on disk."""

    out_dir: str
    trainable_params: int
    total_params: int
    best_epoch: int
    best_val_macro_f1: float
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    samples_per_second: float = 0.0
    device: str = "cpu"


def check_labels(labels: pd.Series, task: str, *, where: str) -> None:
    """Raise if any label is outside TASK_LABELS[task]; the message names the bad labels and the fix."""
    if task not in TASK_LABELS:
        raise ValueError(f"{where}: unknown task {task!r}; expected one of {sorted(TASK_LABELS)}")
    unknown = set(labels.dropna().unique()) - set(TASK_LABELS[task])
    if unknown:
        raise ValueError(
            f"{where}: unknown labels {sorted(unknown)} for task {task!r}; expected a subset of "
            f"{list(TASK_LABELS[task])}. Map them with the source's `label_map` or extend TASK_LABELS "
            "in core/schema.py"
        )


def empty_frame(columns: tuple[str, ...]) -> pd.DataFrame:
    """An empty DataFrame with the given columns (object dtype), for 'nothing was rejected' and the like."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


def title_and_text(articles: pd.DataFrame) -> list[str]:
    """What every stage reads as an article's text: "<title>. <text>", or the text alone when it has no title.

    One way to join them, so the embedding, the distillation pool and the bias axis's words read the same string.

    >>> title_and_text(pd.DataFrame({"title": ["Rates held", None, " "], "text": ["The bank...", "Rain.", "Sun."]}))
    ['Rates held. The bank...', 'Rain.', 'Sun.']
    """
    texts = articles["text"].fillna("").astype(str)
    if "title" not in articles:
        return texts.tolist()
    titles = articles["title"]
    return [f"{t.strip()}. {x}" if isinstance(t, str) and t.strip() else x for t, x in zip(titles, texts)]
