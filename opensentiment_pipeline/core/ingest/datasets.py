"""Readers for the public datasets whose files are not one row per item: NewsMTSC (nested targets) and BABE/MBIC
(one row per vote). Both end in `sources`' shared step, so their rows are cleaned and rejected like any table's."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from opensentiment_pipeline.core.ingest.articles import Rejects, clean_strings, content_id, map_labels
from opensentiment_pipeline.core.ingest.sources import (
    BABE_ANNOTATOR_COLUMNS,
    FORMAT_LABEL_MAP,
    SourceSpec,
    _columns,
    _load_table,
    _require_columns,
    _to_articles,
)
from opensentiment_pipeline.core.schema import TASK_LABELS


def read_newsmtsc(spec: SourceSpec, rejects: Rejects) -> pd.DataFrame:
    """One row per (sentence, target); no outlet is given (the gid prefix names an article pool, not an outlet)."""
    frame, rows = _load_table(Path(spec.path), rejects, spec.encoding)
    if frame.empty and not len(frame.columns):
        return _to_articles(pd.DataFrame(columns=["gid", "sentence_normalized"]), [], spec, rejects,
                            {"id": "gid", "text": "sentence_normalized"})
    _require_columns(frame, ["sentence_normalized", "targets"], spec)
    flat, flat_rows = [], []
    for row, sentence, targets in zip(rows, frame["sentence_normalized"], frame["targets"]):
        if not isinstance(targets, list) or not targets or not all(isinstance(t, dict) for t in targets):
            rejects.add([row], "targets", "no list of target objects", [targets])
            continue
        for target in targets:
            flat.append({"gid": target.get("Input.gid"), "sentence_normalized": sentence,
                         "mention": target.get("mention"), "polarity": target.get("polarity")})
            flat_rows.append(row)
    columns = {"id": "gid", "text": "sentence_normalized", "target": "mention", "label": "polarity"}
    flat_frame = pd.DataFrame(flat, columns=list(columns.values()), dtype=object)
    return _to_articles(flat_frame, flat_rows, spec, rejects, columns, repeated_ids="suffix")


def read_babe_votes(spec: SourceSpec, rejects: Rejects) -> pd.DataFrame:
    """One row per (sentence, annotator) -> one row per sentence with its `votes`.

    Sentences are grouped by `content_id(text)`, so copies that differ only in spacing, case or
    punctuation are one item; its text, outlet and leaning come from its first row that has them.
    A vote with a missing or unknown label, or an annotator's second vote on the same item, is rejected.
    """
    frame, rows = _load_table(Path(spec.path), rejects, spec.encoding)
    columns = _columns(spec)
    if "annotator" not in columns:
        found = [c for c in BABE_ANNOTATOR_COLUMNS if c in frame.columns]
        columns["annotator"] = found[0] if found else BABE_ANNOTATOR_COLUMNS[0]
    _require_columns(frame, columns.values(), spec)
    frame = frame.reset_index(drop=True)
    rows = pd.Series(rows, dtype="int64")
    text_col, label_col, ann_col = columns["text"], columns["label"], columns["annotator"]
    text, annotator = clean_strings(frame[text_col]), clean_strings(frame[ann_col])
    labels, unknown = map_labels(frame[label_col], {**FORMAT_LABEL_MAP["babe_votes"], **spec.label_map}, spec.task)
    faults = [(text.isna(), text_col, "empty text"), (labels.isna() & ~unknown, label_col, "missing label; the vote is dropped"),
              (unknown, label_col, f"unknown label; expected one of {list(TASK_LABELS[spec.task])} or a `label_map` key"),
              (annotator.isna(), ann_col, "empty annotator id")]
    bad = pd.Series(False, index=frame.index)
    for mask, column, reason in faults:
        rejects.add(rows[mask], column, reason, frame[column][mask])
        bad |= mask
    key = pd.Series([None if b else content_id(t) for t, b in zip(text, bad)], index=frame.index, dtype=object)
    repeat = pd.DataFrame({"k": key, "a": annotator}).duplicated() & ~bad
    repeated_vote = "repeated vote by this annotator on the same sentence; the first is kept"
    rejects.add(rows[repeat], ann_col, repeated_vote, annotator[repeat])
    votes = [{"annotator_id": a, "label": v} for a, v in zip(annotator, labels)]
    described = {c: clean_strings(frame[c]) for c in {columns.get("outlet"), columns.get("leaning")} - {None}}
    # Blank outlet/leaning cells become None so that `first` below skips them (SG2 leaves 1,000 `type` cells blank).
    good = frame.assign(_key=key, _row=rows, _vote=votes, **described)[~(bad | repeat)]
    items = good.groupby("_key", sort=False).agg(
        **{c: (c, "first") for c in {text_col, columns.get("outlet"), columns.get("leaning"), "_row"} - {None}},
        _votes=("_vote", list),
    )
    item_columns = {k: v for k, v in columns.items() if k in ("text", "outlet", "leaning")}
    return _to_articles(items, items["_row"], spec, rejects, item_columns, votes=items["_votes"].reset_index(drop=True))
