"""Property-based fuzz of ingestion: files mixing valid rows with every kind of fault, in CSV, JSONL and Parquet.

Hypothesis draws the shape of each example (seed, share of faulty rows, file sizes, odd text fragments); the rows
are generated from it. Each example holds >= 10,000 rows over five files plus three empty ones. The property:
`read_sources` does not crash, every valid row arrives exactly once with its text and canonical split, and every
faulty row is in the rejects, at its row, under the field that is wrong, with a reason; nothing else is rejected.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opensentiment_pipeline.core.ingest.sources import EMPTY_SOURCE, SourceSpec, read_sources

HEADER = ["id", "body", "date", "label", "split"]
COLUMNS = {"id": "id", "text": "body", "published_at": "date", "label": "label", "split": "split"}
SPLIT_SPELLINGS = {"": None, "train": "train", "Train": "train", "TEST": "test", " test ": "test", "dev": "val",
                   "Validation": "val", "VAL": "val"}
LABELS = ["positive", "NEGATIVE", " Neutral "]
VOCAB = [f"{a}{b}" for a in ("ka", "lo", "mi", "ne", "su", "ta", "ri", "po") for b in ("ba", "do", "fi", "gu", "he",
                                                                                       "jo", "ku", "ly", "mo", "nu")]
# Fault -> field its reject must name ("record": the line could not be read as a row at all).
COMMON_FAULTS = {"bad_split": "split", "empty_text": "body", "bad_date": "date", "future_date": "date",
                 "unknown_label": "label", "duplicate_id": "id", "empty_id": "id"}
FORMAT_FAULTS = {
    "csv": {**COMMON_FAULTS, "unterminated_quote": "record", "field_count": "record", "latin1_byte": "record"},
    "latin1_csv": {**COMMON_FAULTS, "unterminated_quote": "record", "field_count": "record"},
    "jsonl": {**COMMON_FAULTS, "invalid_json": "record", "not_an_object": "record", "latin1_byte": "record"},
    "parquet": dict(COMMON_FAULTS),
}
PLACEHOLDER = "\ue000"  # becomes a raw latin-1 byte 0xE9 in a UTF-8 file


@dataclass
class Row:
    values: dict[str, str | None]
    fault: str | None = None
    multiline: bool = False


@dataclass
class Expected:
    valid: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # article_id -> (text, split)
    faulty: dict[tuple[str, int], str] = field(default_factory=dict)  # (source, row) -> field
    n_rows: int = 0


def _rows(rng: np.random.Generator, n: int, fault_share: float, faults: dict[str, str], fragments: list[str],
          *, latin1: bool) -> list[Row]:
    rows: list[Row] = []
    for i in range(n):
        words = " ".join(rng.choice(VOCAB, 8)) + f" item{i}"
        if latin1:
            words += " café über straße"
        fragment = fragments[int(rng.integers(len(fragments)))]
        values = {"id": f"r{i}", "body": f"{words} {fragment}", "date": _date(rng), "label": str(rng.choice(LABELS)),
                  "split": str(rng.choice(list(SPLIT_SPELLINGS)))}
        row = Row(values)
        if rng.random() < 0.05 and not latin1:
            values["body"] = f"{words} {fragment}\n\nSecond paragraph, with one comma."
            row.multiline = True
        elif rng.random() < fault_share:
            row.fault = str(rng.choice(sorted(faults)))
            _apply(row, rng, rows, words)
        rows.append(row)
    return rows


def _date(rng: np.random.Generator) -> str:
    if rng.random() < 0.2:
        return ""
    day = pd.Timestamp("2020-01-01") + pd.Timedelta(minutes=int(rng.integers(0, 3_000_000)))
    return day.isoformat() + ("Z" if rng.random() < 0.5 else "")


def _apply(row: Row, rng: np.random.Generator, earlier: list[Row], words: str) -> None:
    v = row.values
    match row.fault:
        case "bad_split":
            v["split"] = str(rng.choice(["holdout", "tests", "training", "x"]))
        case "empty_text":
            v["body"] = str(rng.choice(["", "   ", "\t"]))
        case "bad_date":
            v["date"] = str(rng.choice(["not a date", "2024-13-45", "yesterday-ish"]))
        case "future_date":
            v["date"] = "2099-01-01T00:00:00Z"
        case "unknown_label":
            v["label"] = str(rng.choice(["ecstatic", "meh", "+1"]))
        case "duplicate_id":
            kept = [r for r in earlier if r.fault is None]
            if kept:
                v["id"] = kept[int(rng.integers(len(kept)))].values["id"]
            else:
                row.fault = None
        case "empty_id":
            v["id"] = ""
        case "unterminated_quote":
            v["body"] = words  # no quote, comma or newline of its own: the opened quote never closes
        case "latin1_byte":
            v["body"] = f"{words} Caf{PLACEHOLDER} noir"


def _csv_bytes(rows: list[Row], rng: np.random.Generator, source: str, expected: Expected, encoding: str) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for number, row in enumerate(rows, start=1):
        if rng.random() < 0.02:
            out.write("\n")  # blank lines are not rows
        values = [row.values[c] or "" for c in HEADER]
        if row.fault == "unterminated_quote":
            out.write(f'{values[0]},"{values[1]},{values[2]},{values[3]},{values[4]}\n')
        elif row.fault == "field_count":
            writer.writerow(values + ["one field too many"])
        else:
            writer.writerow(values)
        _expect(row, source, number, expected, field_of=FORMAT_FAULTS["csv"])
    return out.getvalue().encode(encoding).replace(PLACEHOLDER.encode("utf-8"), b"\xe9")  # only UTF-8 files hold it


def _jsonl_bytes(rows: list[Row], rng: np.random.Generator, source: str, expected: Expected) -> bytes:
    lines = []
    for row in rows:
        if rng.random() < 0.02:
            lines.append("")
        if row.fault == "invalid_json":
            line = json.dumps(row.values, ensure_ascii=False)[:-7]
        elif row.fault == "not_an_object":
            line = json.dumps(list(row.values.values()), ensure_ascii=False)
        else:
            line = json.dumps({k: (None if v == "" and rng.random() < 0.5 else v) for k, v in row.values.items()},
                              ensure_ascii=False)
        lines.append(line)
        _expect(row, source, len(lines), expected, field_of=FORMAT_FAULTS["jsonl"])  # JSONL rows are file lines
    return ("\n".join(lines) + "\n").encode("utf-8").replace(PLACEHOLDER.encode("utf-8"), b"\xe9")


def _expect(row: Row, source: str, number: int, expected: Expected, *, field_of: dict[str, str]) -> None:
    expected.n_rows += 1
    if row.fault is None:
        expected.valid[f"{source}:{row.values['id']}"] = (row.values["body"].strip(), SPLIT_SPELLINGS[row.values["split"]])
    else:
        expected.faulty[(source, number)] = field_of[row.fault]


def _write_example(folder: Path, plan: dict) -> tuple[list[SourceSpec], Expected]:
    rng = np.random.default_rng(plan["seed"])
    expected = Expected()
    specs = []
    for fmt, n in plan["sizes"].items():
        latin1 = fmt == "latin1_csv"
        fragments = [f.encode("latin-1", "replace").decode("latin-1") for f in plan["fragments"]] if latin1 else plan["fragments"]
        rows = _rows(rng, n, plan["fault_share"], FORMAT_FAULTS[fmt], fragments, latin1=latin1)
        path = folder / f"{fmt}.{'csv' if 'csv' in fmt else fmt}"
        if fmt == "parquet":
            frame = pd.DataFrame([{k: (None if v == "" else v) for k, v in r.values.items()} for r in rows], columns=HEADER)
            frame.to_parquet(path)
            for number, row in enumerate(rows, start=1):
                _expect(row, fmt, number, expected, field_of=FORMAT_FAULTS[fmt])
        elif fmt == "jsonl":
            path.write_bytes(_jsonl_bytes(rows, rng, fmt, expected))
        else:
            path.write_bytes(_csv_bytes(rows, rng, fmt, expected, "latin-1" if latin1 else "utf-8"))
        specs.append(SourceSpec(name=fmt, format="table", path=str(path), columns=COLUMNS,
                                encoding="latin-1" if latin1 else "utf-8"))
    for name, content in {"empty_csv.csv": ",".join(HEADER) + "\n", "empty_jsonl.jsonl": ""}.items():
        (folder / name).write_text(content)
    pd.DataFrame(columns=HEADER, dtype=object).to_parquet(folder / "empty_parquet.parquet")
    for name in ("empty_csv.csv", "empty_jsonl.jsonl", "empty_parquet.parquet"):
        specs.append(SourceSpec(name=name.split(".")[0], format="table", path=str(folder / name), columns=COLUMNS))
        expected.faulty[(name.split(".")[0], 0)] = "file"
    return specs, expected


# Text fragments hypothesis may put in a valid row: quotes, delimiters, any script, control characters (no
# surrogates: they cannot be stored as UTF-8; no line breaks: a line inside a quoted text that reads as a whole
# row of its own is, by design, taken for rows swallowed by an open quote).
FRAGMENT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r\n"), min_size=0, max_size=30)
PLAN = st.fixed_dictionaries({
    "seed": st.integers(0, 2**32 - 1),
    "fault_share": st.floats(0.05, 0.6),
    "sizes": st.fixed_dictionaries({"csv": st.integers(3200, 3500), "latin1_csv": st.integers(400, 600),
                                    "jsonl": st.integers(3200, 3500), "parquet": st.integers(3200, 3500)}),
    "fragments": st.lists(FRAGMENT, min_size=1, max_size=20),
})


@settings(max_examples=3, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(plan=PLAN)
def test_every_valid_row_arrives_once_and_every_faulty_row_is_rejected_with_its_field(plan):
    with tempfile.TemporaryDirectory() as tmp:
        specs, expected = _write_example(Path(tmp), plan)
        result = read_sources(specs, near_dup_threshold=0.8, seed=0)
    assert expected.n_rows >= 10_000
    articles = result.articles.set_index("article_id")
    assert articles.index.is_unique
    assert set(articles.index) == set(expected.valid), "valid rows lost or faulty rows let through"
    assert {k: (t, s) for k, t, s in zip(articles.index, articles["text"], articles["split"])} == expected.valid
    rejects = result.rejects
    assert (rejects["reason"].str.len() > 0).all()
    found = {(s, int(r)): set() for s, r in zip(rejects["source"], rejects["row"])}
    for s, r, f in zip(rejects["source"], rejects["row"], rejects["field"]):
        found[(s, int(r))].add(f)
    assert set(found) == set(expected.faulty), "a faulty row is missing from the rejects, or a good row is in them"
    wrong_field = {k: (f, found[k]) for k, f in expected.faulty.items() if f not in found[k]}
    assert not wrong_field
    assert set(rejects.loc[rejects["row"] == 0, "reason"]) == {EMPTY_SOURCE}
    assert result.duplicates_dropped == 0
    print(f"fuzz example: {expected.n_rows} rows, {len(expected.valid)} valid, "
          f"{len(expected.faulty) - 3} faulty + 3 empty files, {len(rejects)} rejects")
