"""Records of CSV/TSV and JSON Lines files, with the lines that cannot be read as rows set aside as rejects.

Files are decoded with `surrogateescape`, so bytes invalid in the source's encoding reject their own line
(with a hint to set `encoding`) instead of the whole file. CSV is parsed with the csv module in strict mode
(pandas' on_bad_lines callback is not told the line's position); a record broken by an unterminated quote is
rejected and parsing resumes on the line after its first, so the rows the open quote swallowed are still read.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from opensentiment_pipeline.core.ingest.articles import Rejects

_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")  # physical lines with their ends, as csv counts them
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes `surrogateescape` kept because the codec could not decode them


def _decode(path: Path, encoding: str) -> str:
    """The file as text; undecodable bytes become lone surrogates, so one bad line does not sink the file."""
    codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    return path.read_bytes().decode(codec, errors="surrogateescape")


def _undecodable(text: str, encoding: str, source: str, line: int) -> str | None:
    """None when `text` decoded cleanly, else the reject reason naming the first bad byte, its line and the fix."""
    found = _UNDECODABLE.search(text)
    if found is None:
        return None
    byte = ord(found.group()) - 0xDC00
    return (f"byte 0x{byte:02X} on file line {line} is not valid {encoding}; if the file is in another "
            f"encoding, set `encoding:` on source {source!r} (e.g. encoding: latin-1)")


def _shown(line: str) -> str:
    """A raw line for the rejects table: undecodable bytes as \\xNN (Parquet cannot store lone surrogates)."""
    return _UNDECODABLE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", line.rstrip("\r\n"))


def load_csv(path: Path, delimiter: str, rejects: Rejects, encoding: str) -> tuple[pd.DataFrame, list[int]]:
    """(frame of strings, 1-based record numbers); an empty file gives a frame without columns."""
    lines = _LINES.findall(_decode(path, encoding))
    header, first = _csv_header(lines, delimiter, path, rejects, encoding)
    records, rows = [], []
    for number, (fields, line) in enumerate(_csv_records(lines, first, delimiter, len(header)), start=1):
        broken = isinstance(fields, str)  # a record broken by quoting: `fields` is the reason
        bad_bytes = _undecodable(lines[line] if broken else "".join(fields), encoding, rejects.source, line + 1)
        if bad_bytes or broken:
            rejects.add([number], "record", bad_bytes or fields, [_shown(lines[line])])
        elif len(fields) != len(header):
            reason = f"expected {len(header)} fields, found {len(fields)}"
            rejects.add([number], "record", reason, [delimiter.join(fields)])
        else:
            records.append(fields)
            rows.append(number)
    return pd.DataFrame(records, columns=header, dtype=object), rows


def _csv_header(lines: list[str], delimiter: str, path: Path, rejects: Rejects, encoding: str) -> tuple[list[str], int]:
    """(header fields, index of the first line after the header); an empty file has an empty header."""
    first = next((i for i, line in enumerate(lines) if line.strip("\r\n")), len(lines))
    if first == len(lines):
        return [], first
    bad_bytes = _undecodable(lines[first], encoding, rejects.source, first + 1)
    if bad_bytes:
        raise ValueError(f"source {rejects.source!r}: cannot read the header of {path}: {bad_bytes}")
    reader = csv.reader(lines[first:], delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as err:
        raise ValueError(f"source {rejects.source!r}: cannot read the header of {path} as CSV ({err})") from None
    if len(set(header)) != len(header):
        raise ValueError(f"source {rejects.source!r}: {path} needs a header row of distinct column names; got {header}")
    return header, first + reader.line_num


def _csv_records(lines: list[str], start: int, delimiter: str, n_fields: int) -> Iterator[tuple[list[str] | str, int]]:
    """Yield (fields, index of the record's first line) per non-blank record; `fields` is a reason string
    for a record broken by an unterminated quote. Parsing then resumes on the line after its first one, so
    the rows the open quote swallowed are still read."""
    while start < len(lines):
        reader = csv.reader(itertools.islice(lines, start, None), delimiter=delimiter, strict=True)
        consumed = 0
        try:
            for fields in reader:
                first, consumed = start + consumed, reader.line_num
                swallowed = _swallowed_rows(fields, delimiter, n_fields) if start + consumed - first > 1 else 0
                if swallowed:
                    yield (f"unterminated quote: the record from file line {first + 1} runs over "
                           f"{swallowed} more line(s) that read as rows of their own; the row is rejected "
                           f"and reading resumes on line {first + 2}"), first
                    start = first + 1
                    break
                if fields:
                    yield fields, first
            else:
                return
        except csv.Error as err:
            first = start + consumed
            yield (f"broken quoting from file line {first + 1} ({err}), most likely an unterminated quote; "
                   f"the row is rejected and reading resumes on line {first + 2}"), first
            start = first + 1


def _swallowed_rows(fields: list[str], delimiter: str, n_fields: int) -> int:
    """How many lines after the first inside the fields of one record parse on their own into `n_fields`
    fields: whole rows an open quote swallowed. A real multi-line text (paragraphs) rarely has a line with
    exactly n_fields - 1 delimiters; an open quote that swallows only part of the next row goes unseen."""
    if n_fields < 2:
        return 0
    found = 0
    for value in fields:
        for line in _LINE_BREAK.split(value)[1:]:
            try:
                found += len(next(csv.reader([line], delimiter=delimiter, strict=True), [])) == n_fields
            except csv.Error:
                continue
    return found


def load_jsonl(path: Path, rejects: Rejects, encoding: str) -> tuple[pd.DataFrame, list[int]]:
    """(frame of the JSON objects, 1-based line numbers); raise when no non-blank line parses as a JSON object
    (not a JSON Lines file). Lines with undecodable bytes are rejected alone and do not count towards that."""
    records, rows, n_lines, n_not_json = [], [], 0, 0
    for number, line in enumerate(_LINES.findall(_decode(path, encoding)), start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        n_lines += 1
        bad_bytes = _undecodable(line, encoding, rejects.source, number)
        if bad_bytes:
            rejects.add([number], "record", bad_bytes, [_shown(line)])
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            rejects.add([number], "record", f"invalid JSON: {err.msg}", [line])
            n_not_json += 1
            continue
        if not isinstance(record, dict):
            rejects.add([number], "record", "not a JSON object", [line])
            n_not_json += 1
            continue
        records.append(record)
        rows.append(number)
    if n_lines and n_not_json == n_lines:
        raise ValueError(f"source {rejects.source!r}: no line of {path} is a JSON object; is it JSON Lines?")
    return pd.DataFrame.from_records(records), rows
