"""Normalise, identify and validate rows of the article table (`ARTICLE_COLUMNS`).

The readers in `sources.py` load files and map their columns; `build_articles` here turns the mapped
rows into this table and records faulty rows as rejects. Nothing here knows about file formats.
Duplicates are dropped in `dedup.py`.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from opensentiment_pipeline.core.schema import ARTICLE_COLUMNS, REJECT_COLUMNS, SPLIT_ALIASES, SPLITS, TASK_LABELS

UNKNOWN_OUTLET = "unknown"
# ASCII bytes that are not [A-Za-z0-9_] become spaces; bytes >= 128 (inside UTF-8 sequences) stay.
_ASCII_NON_WORD_TO_SPACE = bytes(i if chr(i).isalnum() or chr(i) == "_" else 32 for i in range(128)) + bytes(range(128, 256))
_SPACE = re.compile(r"\s+")
_TZ_SUFFIX = re.compile(r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")  # a time, then an offset
_OUTLET_SPACE = re.compile(r"[\s_\-\u2010-\u2015]+")


def is_missing(value: Any) -> bool:
    """True for None, NaN, pd.NA and NaT; False for everything else (lists and arrays included)."""
    if isinstance(value, (list, tuple, dict, np.ndarray)):
        return False
    return value is None or bool(pd.isna(value))


def clean_strings(values: pd.Series) -> pd.Series:
    """Stripped strings (object dtype); None where the value is missing or only whitespace."""
    return values.map(lambda v: None if is_missing(v) else (str(v).strip() or None)).astype(object)


def normalise_outlet(name: Any) -> str:
    """Outlet name for grouping: lower-case, hyphens, dashes and underscores as spaces, single-spaced, stripped.

    The one outlet normaliser of the project: ingestion, the leaning reference and the CLI's `--outlet`
    filter all call it, so a name matches wherever it is typed. Hyphens count as spaces because the same
    outlet is spelled "fox-news" in BABE SG1/MBIC and "Fox News" in SG2; the dashes U+2010..U+2015 (en
    dash, em dash, ...) count as hyphens. Missing or empty names give "unknown".

    >>> normalise_outlet("  Fox   News "), normalise_outlet("usa\u2013today"), normalise_outlet(None)
    ('fox news', 'usa today', 'unknown')
    """
    return UNKNOWN_OUTLET if is_missing(name) else (_OUTLET_SPACE.sub(" ", str(name)).strip().lower() or UNKNOWN_OUTLET)


def normalise_text(text: Any) -> str:
    """Text reduced for hashing: NFKC, case-folded, punctuation removed, words joined by single spaces.

    A word is a run of alphanumeric characters or "_" in any script (regex `\\w+`). Quote styles, dashes
    and spacing differ between copies of the same sentence (BABE's raw files have "?" where the final
    file has "―"), so they must not change the hash.

    >>> normalise_text("  “Don’t”  STOP—now! ")
    'don t stop now'
    """
    return normalised_bytes(text).decode("utf-8")


def normalised_bytes(text: Any) -> bytes:
    """`normalise_text` as UTF-8 bytes, ~3x faster than `re.findall(r"\\w+")` on long articles.

    The ASCII encoder copies ASCII text in C and calls `_clean_non_ascii` once per run of other
    characters; `bytes.translate` then blanks ASCII punctuation.
    """
    if is_missing(text):
        return b""
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    return b" ".join(folded.encode("ascii", errors=_NON_ASCII_ERRORS).translate(_ASCII_NON_WORD_TO_SPACE).split())


@functools.lru_cache(maxsize=65536)
def _clean_run(run: str) -> bytes:
    return "".join(ch if ch.isalnum() else " " for ch in run).encode("utf-8")


def _clean_non_ascii(err: UnicodeEncodeError) -> tuple[bytes, int]:
    return _clean_run(err.object[err.start : err.end]), err.end


_NON_ASCII_ERRORS = "opensentiment_pipeline.word_chars"
codecs.register_error(_NON_ASCII_ERRORS, _clean_non_ascii)


def content_id(text: str, target: str | None = None) -> str:
    """Stable id (16 hex chars of sha1) of the normalised text and target, for items without a source id.

    The same sentence gets the same id in every file and run; the same sentence with another target
    (NewsMTSC) gets another id.
    """
    key = normalise_text(text) + "\x1f" + normalise_text(target)
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def parse_published(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse timestamps to datetime64[ns, UTC].

    Naive timestamps are taken as UTC; offsets are converted. ISO 8601 is parsed vectorised, anything
    else (RFC 822 feed dates, "May 6, 2014") by dateutil, which reads ambiguous "06/09/2021" month first.

    Returns:
        (parsed, failed): `parsed` is NaT where the value is missing or unparseable; `failed` is True
        only where a non-empty value could not be parsed, so the caller can report it as a reject.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        tz_aware = values.dt.tz is not None
        parsed = values.dt.tz_convert("UTC") if tz_aware else values.dt.tz_localize("UTC")
        return parsed.astype("datetime64[ns, UTC]"), pd.Series(False, index=values.index)
    text = clean_strings(values)
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    aware = text.str.contains(_TZ_SUFFIX, na=False)
    for part in (aware, ~aware & text.notna()):  # apart: pandas 2.3 reads a naive ISO time after an aware one in its offset
        if part.any():
            parsed[part] = pd.to_datetime(text[part], utc=True, errors="coerce", format="ISO8601")
    retry = parsed.isna() & text.notna()
    if retry.any():
        parsed[retry] = pd.to_datetime(text[retry], utc=True, errors="coerce", format="mixed")
    return parsed, parsed.isna() & text.notna()


def normalise_splits(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Map split values to SPLITS after case-folding and stripping ("Test" -> "test", "dev" -> "val").

    Returns:
        (splits, unknown): `splits` is None where the value is missing or unknown; `unknown` marks
        non-empty values that SPLIT_ALIASES does not know.
    """
    keys = clean_strings(values).map(lambda v: None if v is None else v.casefold())
    splits = keys.map(lambda k: None if k is None else SPLIT_ALIASES.get(k)).astype(object)
    return splits, splits.isna() & keys.notna()


UNKNOWN_SPLIT = f"unknown split; expected one of {sorted(SPLIT_ALIASES)} (any case; dev and validation mean val)"


def start_of_tomorrow_utc() -> pd.Timestamp:
    """The first instant no article can have been published before: 00:00 UTC tomorrow."""
    return pd.Timestamp.now(tz="UTC").normalize() + pd.Timedelta(days=1)


def publish_days(published_at: pd.Series, *, first_day: str) -> pd.Series:
    """The day (YYYY-MM-DD, UTC) each article is filed under: its publish date, or `first_day` for undated
    articles and anything published before it (labelled corpora, archives)."""
    days = published_at.dt.strftime("%Y-%m-%d")
    return days.where(published_at.notna() & (days > first_day), first_day).astype(object)


def map_labels(values: pd.Series, label_map: Mapping[str, str], task: str) -> tuple[pd.Series, pd.Series]:
    """Map raw labels into TASK_LABELS[task] after case-folding and stripping both sides.

    Labels that are already canonical pass; `label_map` entries win over that pass-through.

    Returns:
        (labels, unknown): `labels` is None where the value is missing or unknown; `unknown` marks
        non-empty values that neither `label_map` nor TASK_LABELS[task] knows.
    """
    lookup = {label: label for label in TASK_LABELS[task]}
    lookup.update({str(k).strip().casefold(): v for k, v in label_map.items()})
    keys = clean_strings(values).map(lambda v: None if v is None else v.casefold())
    labels = keys.map(lambda k: None if k is None else lookup.get(k)).astype(object)
    return labels, labels.isna() & keys.notna()


class Rejects:
    """Collects reject rows (REJECT_COLUMNS) for one file of one source."""

    def __init__(self, source: str, file: str) -> None:
        self.source, self.file = source, file
        self._records: list[tuple[str, str, int, str, str, str]] = []
        self._published: list[pd.Series] = []  # publish dates indexed by row

    def __len__(self) -> int:
        return len(self._records)

    def date_rows(self, rows: Iterable[int], published: Iterable[Any]) -> None:
        """Remember each row's publish date (NaT when unknown); `frame` puts it in `published_at`."""
        self._published.append(pd.Series(published).set_axis(pd.Index(list(rows), dtype="int64")))

    def add(self, rows: Iterable[int], field: str, reason: str, values: Iterable[Any]) -> None:
        """One reject per (row, value); `value` is kept as text cut to 200 characters ("" when missing)."""
        for row, value in zip(rows, values):
            shown = "" if is_missing(value) else str(value)[:200]
            self._records.append((self.source, self.file, int(row), field, reason, shown))

    def frame(self) -> pd.DataFrame:
        """The rejects sorted by row; faults of one row stay in the order they were found."""
        df = pd.DataFrame(self._records, columns=list(REJECT_COLUMNS[:-1])).astype({"row": "int64"})
        published = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns, UTC]")
        if self._published and len(df):
            dates = pd.concat(self._published)
            dates = dates[~dates.index.duplicated()]  # NewsMTSC: several targets of one line share its date
            published = pd.to_datetime(df["row"].map(dates), utc=True).astype("datetime64[ns, UTC]")
        return df.assign(published_at=published).sort_values("row", kind="stable").reset_index(drop=True)


def build_articles(
    frame: pd.DataFrame,
    rows: Iterable[int],
    columns: Mapping[str, str],
    *,
    rejects: Rejects,
    source: str,
    task: str,
    label_map: Mapping[str, str],
    outlet: str | None,
    split: str | None,
    label_columns: tuple[str, ...],
    votes: pd.Series | None = None,
    repeated_ids: str = "reject",
) -> pd.DataFrame:
    """Clean the mapped columns of `frame` into ARTICLE_COLUMNS; faulty rows go to `rejects` and are dropped.

    Args:
        frame: raw rows; `rows` gives each one's 1-based position in its file (for rejects).
        columns: article field -> column of `frame` ("id", "text", "title", "outlet", "published_at",
            "label", "target", "leaning", "topic", "split", "agreement"); only "text" is required.
        outlet, split: constants that override the mapped column when not None.
        label_columns: one column per annotator; unknown votes are rejected alone (the row stays).
        votes: ready-made vote lists, aligned with `frame` (instead of `label_columns`).
        repeated_ids: "reject" later rows with a repeated source id, or "suffix" them with #2, #3.

    Ids: `f"{source}:{id}"` when an "id" column is mapped, else `f"{task}:{content_id(text, target)}"`.
    """
    frame = frame.reset_index(drop=True)
    rows = pd.Series(list(rows), index=frame.index, dtype="int64")
    fields, bad = _clean_fields(frame, rows, columns, rejects, task=task, label_map=label_map)
    if votes is None:
        votes = _wide_votes(frame, rows, rejects, label_columns, task=task, label_map=label_map)
    ids = fields.pop("id")
    if ids is not None and repeated_ids == "reject":
        repeated = ids.where(~bad).duplicated() & ~bad
        rejects.add(rows[repeated], columns["id"], "repeated id; the first row with it is kept", ids[repeated])
        bad = bad | repeated
    articles = pd.DataFrame(
        {
            **fields,
            "outlet": fields["outlet"].map(normalise_outlet) if outlet is None else normalise_outlet(outlet),
            "source": source,
            "split": fields["split"] if split is None else split,
            "task": task,
            "votes": pd.Series(list(votes), index=frame.index, dtype=object),
        },
        columns=list(ARTICLE_COLUMNS),
    )[~bad]
    if ids is not None:
        articles["article_id"] = source + ":" + _suffix_repeats(ids[~bad])
    else:
        hashes = pd.Series([content_id(t, g) for t, g in zip(articles["text"], articles["target"])], index=articles.index)
        articles["article_id"] = task + ":" + _suffix_repeats(hashes.astype(object))
    return articles.astype({"published_at": "datetime64[ns, UTC]", "agreement": "float64"}).reset_index(drop=True)


def _clean_fields(frame: pd.DataFrame, rows: pd.Series, columns: Mapping[str, str], rejects: Rejects, *,
                  task: str, label_map: Mapping[str, str]) -> tuple[dict[str, Any], pd.Series]:
    """Cleaned article fields (missing columns give None/NaT/NaN) and the mask of rows with a fault."""
    bad = pd.Series(False, index=frame.index)

    def raw(name: str) -> pd.Series:
        return frame[columns[name]] if name in columns else pd.Series(None, index=frame.index, dtype=object)

    def reject(mask: pd.Series, name: str, reason: str) -> None:
        nonlocal bad
        rejects.add(rows[mask], columns.get(name, name), reason, raw(name)[mask])
        bad = bad | mask

    ids = None
    if "id" in columns:
        ids, blank = _clean_ids(raw("id")), clean_strings(raw("id")).isna()
        reject(blank, "id", "empty id")
        reject(ids.isna() & ~blank, "id", "garbled id (control or replacement characters)")
    text = clean_strings(raw("text"))
    reject(text.isna(), "text", "empty text")
    published, failed = parse_published(raw("published_at"))
    rejects.date_rows(rows, published)
    reject(failed, "published_at", "unparseable date")
    reject(published >= start_of_tomorrow_utc(), "published_at", "publish date is in the future (after today, UTC)")
    label, unknown = map_labels(raw("label"), label_map, task)
    reject(unknown, "label", f"unknown label; expected one of {list(TASK_LABELS[task])} or a `label_map` key")
    agreement = pd.to_numeric(raw("agreement"), errors="coerce").astype(float)
    reject(~agreement.between(0, 1) & clean_strings(raw("agreement")).notna(), "agreement", "agreement is not a number in [0, 1]")
    split, unknown_split = normalise_splits(raw("split"))
    reject(unknown_split, "split", UNKNOWN_SPLIT)
    fields = {
        "id": ids, "text": text, "published_at": published, "label": label, "agreement": agreement,
        "title": clean_strings(raw("title")).fillna(""), "outlet": raw("outlet"), "split": split,
        "target": clean_strings(raw("target")),
        "leaning": clean_strings(raw("leaning")).map(lambda v: v if v is None else v.lower()),
        "topic": clean_strings(raw("topic")),
    }
    return fields, bad


def _clean_ids(values: pd.Series) -> pd.Series:
    """Ids as single-line strings; None where empty or garbled (control characters, U+FFFD from a bad decode)."""

    def clean(value: Any) -> str | None:
        if is_missing(value):
            return None
        if isinstance(value, float) and value.is_integer():  # an int column with gaps comes back as float
            value = int(value)
        text = _SPACE.sub(" ", str(value)).strip()  # NewsMTSC gids hold newlines; ids end up in CSVs and logs
        garbled = any(unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") or ch == "\ufffd" for ch in text)
        return None if not text or garbled else text

    return values.map(clean).astype(object)


def _suffix_repeats(ids: pd.Series) -> pd.Series:
    """Make ids unique by appending #2, #3, ... to later repeats (the first keeps its id)."""
    nth = ids.groupby(ids, sort=False).cumcount()
    return ids.where(nth == 0, ids + "#" + (nth + 1).astype(str))


def _wide_votes(frame: pd.DataFrame, rows: pd.Series, rejects: Rejects, label_columns: tuple[str, ...], *,
                task: str, label_map: Mapping[str, str]) -> list[list[dict[str, str]]]:
    """One list of {"annotator_id", "label"} per row; an unknown vote is rejected alone, the row stays."""
    per_column = []
    for column in label_columns:
        labels, unknown = map_labels(frame[column], label_map, task)
        reason = f"unknown label; the vote is dropped. Expected one of {list(TASK_LABELS[task])} or a `label_map` key"
        rejects.add(rows[unknown], column, reason, frame[column][unknown])
        per_column.append(labels)
    if not per_column:
        return [[] for _ in range(len(frame))]
    return [[{"annotator_id": c, "label": v} for c, v in zip(label_columns, values) if v is not None]
            for values in zip(*per_column)]


def _labels_fit_task(df: pd.DataFrame) -> pd.Series:
    ok = [is_missing(label) or label in TASK_LABELS.get(task, ()) for task, label in zip(df["task"], df["label"])]
    return pd.Series(ok, index=df.index)


def _votes_fit_task(df: pd.DataFrame) -> pd.Series:
    ok = [isinstance(votes, list) and all(isinstance(v, dict) and bool(v.get("annotator_id"))
                                          and v.get("label") in TASK_LABELS.get(task, ()) for v in votes)
          for votes, task in zip(df["votes"], df["task"])]
    return pd.Series(ok, index=df.index)


_NON_EMPTY = pa.Check(lambda s: s.str.strip().str.len() > 0, element_wise=False, name="non_empty")
ARTICLE_SCHEMA = pa.DataFrameSchema(
    {
        "article_id": pa.Column(str, checks=_NON_EMPTY, unique=True),
        "outlet": pa.Column(str, checks=_NON_EMPTY),
        "published_at": pa.Column(pd.DatetimeTZDtype("ns", "UTC"), nullable=True),
        "title": pa.Column(str),
        "text": pa.Column(str, checks=_NON_EMPTY),
        "source": pa.Column(str, checks=_NON_EMPTY),
        "split": pa.Column(str, checks=pa.Check.isin(list(SPLITS)), nullable=True),
        "target": pa.Column(str, nullable=True),
        "task": pa.Column(str, checks=pa.Check.isin(sorted(TASK_LABELS))),
        "label": pa.Column(str, nullable=True),
        "agreement": pa.Column(float, checks=pa.Check.in_range(0.0, 1.0), nullable=True),
        "leaning": pa.Column(str, nullable=True),
        "topic": pa.Column(str, nullable=True),
        "votes": pa.Column(object),
    },
    checks=[
        pa.Check(_labels_fit_task, name="label_in_task_labels"),
        pa.Check(_votes_fit_task, name="votes_are_annotator_label_dicts_in_task_labels"),
    ],
    strict=True,
    ordered=True,
)
if tuple(ARTICLE_SCHEMA.columns) != ARTICLE_COLUMNS:  # fail at import, not halfway through a run
    raise RuntimeError("ARTICLE_SCHEMA in core/ingest/articles.py no longer matches ARTICLE_COLUMNS in core/schema.py")


def validate_articles(articles: pd.DataFrame) -> pd.DataFrame:
    """Check `articles` against ARTICLE_SCHEMA and return it; raise ValueError listing every failure.

    The message names each failing column and check with up to 5 offending values and row labels,
    e.g. "column 'label', check label_in_task_labels: values ['joyful'] at rows [3]".
    """
    try:
        return ARTICLE_SCHEMA.validate(articles, lazy=True)
    except pa.errors.SchemaErrors as err:
        raise ValueError(_describe_failures(err.failure_cases)) from None


def _describe_failures(cases: pd.DataFrame) -> str:
    lines = []
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        if check in {"label_in_task_labels", "votes_are_annotator_label_dicts_in_task_labels"}:
            wanted = "label" if check == "label_in_task_labels" else "votes"
            if column != wanted:  # dataframe checks report every column of a failing row; keep the one that matters
                continue
        values = list(dict.fromkeys(map(repr, group["failure_case"])))[:5]
        rows = list(dict.fromkeys(group["index"].dropna().tolist()))[:5]
        where = f"column {column!r}" if isinstance(column, str) else "table"  # schema-wide checks have no column
        lines.append(f"{where}, check {check}: values [{', '.join(values)}]" + (f" at rows {rows}" if rows else ""))
    allowed = {task: list(labels) for task, labels in TASK_LABELS.items()}
    return (
        f"{len(lines)} article table check(s) failed:\n  " + "\n  ".join(lines) + "\n"
        f"Expected columns {list(ARTICLE_COLUMNS)} in that order and labels per task {allowed}. "
        "Fix the reader that produced these rows or its SourceSpec."
    )
