"""Readers that turn one configured source into the article table (`ARTICLE_COLUMNS`) plus its rejects.

Every format is read the same way: load the file, map its columns to article fields, then one shared
step (`articles.build_articles`) cleans the fields and sets aside faulty rows. The dataset formats only add how
their columns are laid out (`FORMAT_COLUMNS`) and, where the file is nested or one row per vote, how to
flatten it first.

Rejects (REJECT_COLUMNS) hold one row per fault, so a row with two faults appears twice:
- `row` is 1-based. CSV/TSV: the data record number; the header and blank lines are not counted, so
  for files without multi-line fields the file line is `row + 1`. A record broken by an unterminated
  quote counts as one row (its first line), and reading resumes on the line after it (`textfiles.py`).
  JSONL: the line number. Parquet: the row position. RSS/Atom: the entry position. NewsMTSC: the
  sentence's line; BABE votes: the vote's row.
- `field` is the column as named in the file (e.g. `label_bias`), or "record" for a line that can't be
  parsed at all. `value` is the raw value as text, cut to 200 characters.
- A fault in the id, text, date, gold label or agreement rejects the whole row. An unknown label in one
  of `label_columns` drops only that annotator's vote: the other votes still describe the item.
  Ids have their whitespace collapsed (NewsMTSC gids contain newlines); ids with other control
  characters or U+FFFD (a decoding failure) are "garbled".
- A CSV/TSV/JSONL line with bytes that are not valid in the source's `encoding` is rejected alone
  (field "record"), with a hint to set `encoding`; the rest of the file is read.
- A source that yields no row at all (a header-only CSV, an empty JSONL, a feed without entries) gets one
  reject with `row` 0 and field "file", so the rejected-share check sees it (share 1.0) instead of
  nothing. It is not an error: other sources are still read and stored; the check stops what follows.
- `published_at` of a reject is the row's publish date when it could be read; ingestion files the
  reject under that day (see defs/assets/ingest.py).

Ids: a source id becomes `f"{spec.name}:{raw_id}"`, so ids from different sources never clash. A
repeated source id is rejected (first row kept), except in NewsMTSC, where a suffix `#2`, `#3` makes it
unique. Items without a source id (FPB, BABE, tables without an `id` column) get
`f"{task}:{content_id(text, target)}"`: the same sentence gets the same id in every file (BABE SG1,
SG2 and MBIC share items), and equal ids are always exact duplicates that `deduplicate` removes.
"""

from __future__ import annotations

import codecs
import logging
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.ingest.articles import (
    Rejects,
    build_articles,
    clean_strings,
    normalise_splits,
    validate_articles,
)
from opensentiment_pipeline.core.ingest.dedup import deduplicate
from opensentiment_pipeline.core.ingest.textfiles import load_csv, load_jsonl
from opensentiment_pipeline.core.schema import SPLIT_ALIASES, TASK_LABELS, IngestResult

logger = logging.getLogger(__name__)

FORMATS = ("table", "newsmtsc", "financial_phrasebank", "babe_votes", "article_bias_prediction", "rss")
MAPPABLE_FIELDS = ("id", "text", "title", "outlet", "published_at", "label", "target", "leaning", "topic", "split",
                   "agreement")
# Column layout of the dataset formats (see shared/data/*/SOURCE.md); `SourceSpec.columns` overrides entries.
FORMAT_COLUMNS: dict[str, dict[str, str]] = {
    "table": {},
    "financial_phrasebank": {"text": "sentence", "label": "label", "agreement": "min_agreement_pct"},
    "babe_votes": {"text": "text", "outlet": "outlet", "leaning": "type", "label": "label_bias"},
    "article_bias_prediction": {
        "id": "ID", "text": "content_original", "title": "title", "outlet": "source",
        "published_at": "date", "leaning": "bias_text", "topic": "topic",
    },
}
FORMAT_TASK = {"babe_votes": "bias"}  # every other format defaults to "sentiment"
# Built-in label maps, overridden by `SourceSpec.label_map`. NewsMTSC polarity is a float code. One SG2
# vote reads "Biased, unfair": the annotator judged the sentence biased and added a qualifier, so it
# counts as a "biased" vote rather than being thrown away.
FORMAT_LABEL_MAP: dict[str, dict[str, str]] = {
    "newsmtsc": {"2.0": "negative", "4.0": "neutral", "6.0": "positive", "2": "negative", "4": "neutral", "6": "positive"},
    "babe_votes": {"biased, unfair": "biased"},
}
BABE_ANNOTATOR_COLUMNS = ("annotator_id", "worker_pseudo_id")  # experts (SG1/SG2), MTurk workers (MBIC)
_NESTED_FORMATS = ("newsmtsc", "rss")  # fixed nested layout: no column mapping
DEFAULT_MAX_FEED_BYTES = 20_000_000  # real feeds are well under 1 MB; 20 MB is a page of HTML or a file, not a feed
EMPTY_SOURCE = "empty source: no rows at all (a header-only CSV, an empty JSONL file or a feed without entries)"


@dataclass(frozen=True)
class SourceSpec:
    """One input source and how to read it.

    Args:
        name: short unique name; becomes `source` and the prefix of source ids (no ":").
        format: one of FORMATS. "table" reads .csv, .tsv, .jsonl/.ndjson and .parquet by suffix.
        path: file path (relative to the working directory); for "rss" also an http(s) URL.
        columns: article field -> column in the file (fields: MAPPABLE_FIELDS; "babe_votes" also takes
            "annotator"). Dataset formats have defaults (FORMAT_COLUMNS) that these override.
        label_columns: one column per annotator holding that annotator's vote; the annotator id is the
            column name. Empty cells are "no vote".
        task: key of TASK_LABELS; None picks the format's task ("bias" for babe_votes, else "sentiment").
        label_map: raw label -> label in TASK_LABELS[task]; keys match after case-folding and stripping.
            Labels that are already canonical need no entry.
        split: fixed split for every row; overrides a `split` column. Case-folded; "dev" and
            "validation" mean "val"; anything but train / val / test is an error here and a reject in a column.
        outlet: fixed outlet for every row (normalised); overrides an `outlet` column.
        limit: keep a seeded random subset of `limit` items, drawn after reading and cleaning (rejects
            still cover the whole file). The only subsampling mechanism; items keep file order.
        seed: seed for `limit`; required with it.
        test_size: split the file's rows into train / test with a stratified
            `train_test_split(rows, test_size=test_size, random_state=split_seed, stratify=label)` over every row
            in file order, before any row is rejected or deduplicated. This reproduces a published fixed split
            (Financial PhraseBank: 4,840 rows, 0.2, 0) exactly; rows rejected later leave their side of it.
        split_seed: `random_state` of that split.
        encoding: text encoding of a CSV/TSV/JSONL file (any Python codec name, e.g. "latin-1", "cp1252").
            The default "utf-8" also skips a byte-order mark. A line with bytes invalid in it is rejected.
        max_feed_bytes: largest RSS/Atom document read (bytes); a bigger one is an error, not a slow crash.
    """

    name: str
    format: str
    path: str
    columns: Mapping[str, str] = field(default_factory=dict)
    label_columns: tuple[str, ...] = ()
    task: str | None = None
    label_map: Mapping[str, str] = field(default_factory=dict)
    split: str | None = None
    outlet: str | None = None
    limit: int | None = None
    seed: int | None = None
    test_size: float | None = None
    split_seed: int = 0
    encoding: str = "utf-8"
    max_feed_bytes: int = DEFAULT_MAX_FEED_BYTES

    def __post_init__(self) -> None:
        # Copies: a caller mutating its dict later must not change a spec that was already checked.
        object.__setattr__(self, "columns", dict(self.columns))
        object.__setattr__(self, "label_map", dict(self.label_map))
        object.__setattr__(self, "label_columns", tuple(self.label_columns))
        object.__setattr__(self, "task", self.task or FORMAT_TASK.get(self.format, "sentiment"))
        self._check_identity()
        self._check_columns()
        self._check_labels()
        self._check_sampling()
        self._check_reading()

    def _check_identity(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or ":" in self.name or self.name in TASK_LABELS:
            raise ValueError(
                f"SourceSpec.name must be a non-empty string without ':' and not a task name {sorted(TASK_LABELS)} "
                f"(it prefixes article ids); got {self.name!r}"
            )
        if self.format not in FORMATS:
            raise ValueError(f"SourceSpec {self.name!r}: format must be one of {list(FORMATS)}; got {self.format!r}")
        if not str(self.path).strip():
            raise ValueError(f"SourceSpec {self.name!r}: path is empty; pass the file (or, for rss, URL) to read")

    def _check_columns(self) -> None:
        allowed = MAPPABLE_FIELDS + (("annotator",) if self.format == "babe_votes" else ())
        unknown = sorted(set(self.columns) - set(allowed))
        if unknown:
            raise ValueError(f"SourceSpec {self.name!r}: unknown field(s) {unknown} in columns; allowed: {list(allowed)}")
        if self.format in _NESTED_FORMATS and self.columns:
            raise ValueError(f"SourceSpec {self.name!r}: format {self.format!r} has a fixed layout; remove `columns`")
        if self.format == "table" and "text" not in self.columns:
            raise ValueError(f"SourceSpec {self.name!r}: columns must map 'text', e.g. columns={{'text': 'body'}}")
        if self.label_columns and self.format != "table":
            raise ValueError(f"SourceSpec {self.name!r}: label_columns is only read for format 'table'; remove it")
        bad = [c for c in (*self.columns.values(), *self.label_columns) if not isinstance(c, str) or not c]
        if bad:
            raise ValueError(f"SourceSpec {self.name!r}: column names must be non-empty strings; got {bad}")
        for fixed in ("split", "outlet"):
            if getattr(self, fixed) is not None and fixed in self.columns:
                warnings.warn(f"SourceSpec {self.name!r}: columns[{fixed!r}] is ignored because {fixed}= is set", stacklevel=3)
        if self.split is not None:
            split, unknown = normalise_splits(pd.Series([self.split], dtype=object))
            if unknown.iloc[0]:
                raise ValueError(f"SourceSpec {self.name!r}: split must be one of {sorted(SPLIT_ALIASES)} "
                                 f"(any case; dev and validation mean val); got {self.split!r}")
            object.__setattr__(self, "split", split.iloc[0])

    def _check_labels(self) -> None:
        if self.task not in TASK_LABELS:
            raise ValueError(f"SourceSpec {self.name!r}: task must be one of {sorted(TASK_LABELS)}; got {self.task!r}")
        bad = {k: v for k, v in self.label_map.items() if v not in TASK_LABELS[self.task]}
        if bad:
            raise ValueError(
                f"SourceSpec {self.name!r}: label_map targets {bad} are not labels of task {self.task!r}; "
                f"map to one of {list(TASK_LABELS[self.task])}"
            )

    def _check_sampling(self) -> None:
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise ValueError(f"SourceSpec {self.name!r}: limit must be a positive integer or None; got {self.limit!r}")
        if self.limit is not None and self.seed is None:
            raise ValueError(
                f"SourceSpec {self.name!r}: limit={self.limit} needs a seed; pass seed=<int> so the subset is reproducible"
            )
        if self.limit is None and self.seed is not None:
            warnings.warn(f"SourceSpec {self.name!r}: seed has no effect without limit", stacklevel=3)
        if self.test_size is not None:
            if not 0 < self.test_size < 1:
                raise ValueError(f"SourceSpec {self.name!r}: test_size must be in (0, 1); got {self.test_size!r}")
            if self.split is not None or self.format in _NESTED_FORMATS:
                raise ValueError(f"SourceSpec {self.name!r}: test_size splits a table source's rows; it cannot be "
                                 f"combined with split= or used with format {self.format!r}")


    def _check_reading(self) -> None:
        try:
            codecs.lookup(self.encoding)
        except (LookupError, TypeError):
            raise ValueError(f"SourceSpec {self.name!r}: encoding {self.encoding!r} is not a codec Python knows; "
                             "use e.g. 'utf-8', 'latin-1' or 'cp1252'") from None
        if self.format == "rss" and codecs.lookup(self.encoding).name != "utf-8":
            warnings.warn(f"SourceSpec {self.name!r}: encoding has no effect on a feed (its XML declares it)", stacklevel=3)
        if not isinstance(self.max_feed_bytes, int) or self.max_feed_bytes < 1:
            raise ValueError(f"SourceSpec {self.name!r}: max_feed_bytes must be a positive integer; got {self.max_feed_bytes!r}")


def read_sources(specs: Iterable[SourceSpec], *, near_dup_threshold: float, seed: int) -> IngestResult:
    """Read every source, drop duplicates across all of them and validate the table.

    Rows with split "test" are never dropped and win over every other row that repeats them; "val" rows
    come next and win over train and unsplit rows; otherwise earlier sources (and rows) win. Split values
    are already canonical here (`build_articles` case-folds them), so "Test" in a file is protected too.

    Ids are unique across sources by construction: source ids carry the source name, and two content
    ids are equal only for exact duplicates, which `deduplicate` drops; `validate_articles` checks it.
    `rejects` concatenates every source's rejects; `duplicates_dropped` counts exact plus near duplicates.
    """
    specs = list(specs)
    names = [s.name for s in specs]
    if not specs or len(set(names)) != len(names):
        raise ValueError(f"read_sources needs at least one source and unique names; got {names}")
    results = [read_source(s) for s in specs]
    combined = pd.concat([r.articles for r in results], ignore_index=True)
    # Fixed test rows go first and are protected: a published test set stays whole, and rows that repeat a
    # test row are dropped (no leakage). Val rows go next, so a train copy of a val row is the one dropped.
    # Row order is restored afterwards.
    is_test = (combined["split"] == "test").to_numpy()
    rank = np.where(is_test, 0, np.where(combined["split"] == "val", 1, 2))
    order = np.argsort(rank, kind="stable")
    reordered = combined.iloc[order].assign(_position=order).reset_index(drop=True)
    kept, n_exact, n_near = deduplicate(reordered, near_threshold=near_dup_threshold, seed=seed,
                                        protected=is_test[order])
    kept = kept.sort_values("_position").drop(columns="_position").reset_index(drop=True)
    rejects = pd.concat([r.rejects for r in results], ignore_index=True)
    return IngestResult(articles=validate_articles(kept), rejects=rejects, duplicates_dropped=n_exact + n_near,
                        rows_read={name: n for r in results for name, n in r.rows_read.items()})


def read_source(spec: SourceSpec) -> IngestResult:
    """Read one source into ARTICLE_COLUMNS (in order) and its rejects; no deduplication."""
    rejects = Rejects(spec.name, str(spec.path))
    from opensentiment_pipeline.core.ingest import datasets, feeds  # they read tables with this module's helpers

    reader = {"newsmtsc": datasets.read_newsmtsc, "babe_votes": datasets.read_babe_votes,
              "rss": feeds.read_rss}.get(spec.format, _read_table)
    articles = reader(spec, rejects)
    if articles.empty and not len(rejects):
        logger.warning("%s: %s: %s", spec.name, spec.path, EMPTY_SOURCE)
        rejects.add([0], "file", EMPTY_SOURCE, [""])
    rejects_frame = rejects.frame()
    rows_read = len(articles) + len(rejects_frame.drop_duplicates("row"))
    if spec.limit is not None and len(articles) > spec.limit:
        articles = articles.sample(n=spec.limit, random_state=spec.seed).sort_index()
    articles = validate_articles(articles.reset_index(drop=True))
    logger.info("%s: %d articles, %d rejects from %s", spec.name, len(articles), len(rejects_frame), spec.path)
    return IngestResult(articles=articles, rejects=rejects_frame, rows_read={spec.name: rows_read})


def _columns(spec: SourceSpec) -> dict[str, str]:
    return {**FORMAT_COLUMNS.get(spec.format, {}), **spec.columns}


def _read_table(spec: SourceSpec, rejects: Rejects) -> pd.DataFrame:
    frame, rows = _load_table(Path(spec.path), rejects, spec.encoding)
    columns = _columns(spec)
    needed = [*columns.values(), *spec.label_columns]
    if frame.empty and not len(frame.columns):  # an empty JSONL file has no columns to check
        frame = pd.DataFrame(columns=list(dict.fromkeys(needed)), dtype=object)
    _require_columns(frame, needed, spec)
    if spec.test_size is not None and len(frame):
        frame, columns = _fixed_split(frame, rows, columns, spec)
    if spec.format == "financial_phrasebank":
        frame, rows = _prepare_phrasebank(frame, rows, columns, rejects)
    return _to_articles(frame, rows, spec, rejects, columns)


def _require_columns(frame: pd.DataFrame, needed: Iterable[str], spec: SourceSpec) -> None:
    missing = sorted(set(needed) - set(frame.columns))
    if missing:
        raise ValueError(
            f"source {spec.name!r}: {spec.path} has no column(s) {missing}; available columns: {list(frame.columns)}. "
            "Add it to `columns` or fix the export"
        )


def _load_table(path: Path, rejects: Rejects, encoding: str) -> tuple[pd.DataFrame, list[int]]:
    """Load a whole file as (frame, 1-based row numbers); unparseable records go to `rejects`."""
    if not path.is_file():
        raise FileNotFoundError(f"source {rejects.source!r}: no such file: {path}")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return load_csv(path, "\t" if suffix == ".tsv" else ",", rejects, encoding)
    if suffix in (".jsonl", ".ndjson"):
        return load_jsonl(path, rejects, encoding)
    if suffix in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several unrelated types for a corrupt file
            raise ValueError(f"source {rejects.source!r}: cannot read {path} as Parquet: {err}") from err
        return frame, list(range(1, len(frame) + 1))
    raise ValueError(
        f"source {rejects.source!r}: {path} has unsupported suffix {suffix!r}; use .csv, .tsv, .jsonl, .ndjson or .parquet"
    )


_SPLIT_COLUMN = "__opensentiment_split"


def _fixed_split(frame: pd.DataFrame, rows: list[int], columns: Mapping[str, str], spec: SourceSpec) -> tuple[pd.DataFrame, dict[str, str]]:
    """Add a train/test column from a stratified split of all rows in file order (see SourceSpec.test_size)."""
    from sklearn.model_selection import train_test_split

    if "label" not in columns:
        raise ValueError(f"source {spec.name!r} ({spec.path}): test_size needs a label column to stratify on; "
                         f"map one with columns={{'label': ...}}")
    labels = frame[columns["label"]]
    empty = clean_strings(labels).isna().to_numpy()
    if empty.any():
        row = rows[int(np.flatnonzero(empty)[0])]
        raise ValueError(f"source {spec.name!r} ({spec.path}) row {row}, field {columns['label']!r}: empty label; "
                         f"a stratified fixed split needs every row labelled (drop test_size or fix the file)")
    try:
        _, test_rows = train_test_split(np.arange(len(frame)), test_size=spec.test_size, random_state=spec.split_seed,
                                        stratify=labels.astype(str).to_numpy())
    except ValueError as err:  # e.g. a class with a single row cannot be stratified
        raise ValueError(f"source {spec.name!r} ({spec.path}): cannot split field {columns['label']!r} "
                         f"with test_size={spec.test_size}: {err}") from None
    split = np.full(len(frame), "train", dtype=object)
    split[test_rows] = "test"
    return frame.assign(**{_SPLIT_COLUMN: split}), {**columns, "split": _SPLIT_COLUMN}


def _to_articles(frame: pd.DataFrame, rows: Iterable[int], spec: SourceSpec, rejects: Rejects,
                 columns: Mapping[str, str], **kwargs: Any) -> pd.DataFrame:
    return build_articles(
        frame, rows, columns, rejects=rejects, source=spec.name, task=spec.task, outlet=spec.outlet, split=spec.split,
        label_map={**FORMAT_LABEL_MAP.get(spec.format, {}), **spec.label_map}, label_columns=spec.label_columns, **kwargs,
    )


def _prepare_phrasebank(
    frame: pd.DataFrame, rows: list[int], columns: Mapping[str, str], rejects: Rejects
) -> tuple[pd.DataFrame, list[int]]:
    """Percent agreement -> fraction; reject rows whose sentence has another label elsewhere in the file."""
    pct_column = columns["agreement"]
    pct = pd.to_numeric(frame[pct_column], errors="coerce")
    frame = frame.assign(**{pct_column: (pct / 100).astype(object).where(pct.notna(), frame[pct_column])})
    flag = "sentence_has_conflicting_labels"
    if flag not in frame.columns:
        return frame, rows
    conflicting = frame[flag].map(lambda v: str(v).strip().lower() in ("true", "1")).to_numpy()
    rejects.add([r for r, c in zip(rows, conflicting) if c], flag, "sentence has conflicting labels in the source",
                frame.loc[conflicting, columns["label"]])
    return frame.loc[~conflicting], [r for r, c in zip(rows, conflicting) if not c]


