"""Reading a day-partitioned asset day by day, and telling which stored days a state has not folded in yet.

An unpartitioned asset that annotates an input as `StoredDays` gets this handle from the ParquetIOManager
instead of every stored day concatenated into one pandas frame: it reads the days it needs (a night: the new
one), in batches of days when it needs them all, and only the columns it asks for. What the handle reads is
appended to the IO manager's read log when it has one, which is how the nightly test proves that a night reads
its own day and no other.

Incremental assets (the search index, the outlet map, the bias axis, stories, the weekly tables) keep, beside
their state, the fingerprint of every upstream day they folded in (`DayLedger`). A fingerprint is a stat of the
day's file (inode, size, modification time), not a read: every write replaces the file, so a day that was
re-ingested or re-embedded gets a new one. `changes` then says which days are new, which changed since they were
folded in, and which are gone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

LEDGER_FILE = "days.json"


@dataclass(frozen=True)
class StoredDays:
    """The stored days `keys` of one day-partitioned asset (a folder of <day>.parquet files)."""

    asset: str
    folder: Path
    keys: tuple[str, ...]  # the days the reading asset depends on; some may not be stored
    reader: str = ""  # the asset reading them, for the read log
    read_log: Path | None = None
    run_id: str = ""

    def days(self) -> list[str]:
        """The stored days among `keys`, oldest first."""
        return [day for day in self.keys if (self.folder / f"{day}.parquet").exists()]

    def fingerprints(self) -> dict[str, str]:
        """Day -> a stat of its file (inode, size, mtime): changes whenever the day is written again."""
        prints = {}
        for day in self.days():
            stat = (self.folder / f"{day}.parquet").stat()
            prints[day] = f"{stat.st_ino}-{stat.st_size}-{stat.st_mtime_ns}"
        return prints

    def read(self, days: Sequence[str] | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The rows of `days` (default: every stored day) as one frame, `columns` only when given."""
        from opensentiment_pipeline.defs.resources import LOCK_FILE, _locked

        days = self.days() if days is None else list(days)
        stored = set(self.days())
        missing = [day for day in days if day not in stored]
        if missing:
            raise FileNotFoundError(f"{self.asset} has no stored day {missing[:5]} in {self.folder}: materialize "
                                    f"it first, e.g. dagster asset materialize --select {self.asset} "
                                    f"--partition {missing[0]}")
        with _locked(self.folder / LOCK_FILE, exclusive=False):
            frames = [pd.read_parquet(self.folder / f"{day}.parquet", columns=list(columns) if columns else None)
                      for day in days]
        self._log(days)
        if not frames:
            return self._empty(columns)
        non_empty = [f for f in frames if len(f)] or frames[:1]  # concat of empty frames warns and loses dtypes
        return pd.concat(non_empty, ignore_index=True)

    def iter_batches(self, days: Sequence[str] | None = None, columns: Sequence[str] | None = None,
                     days_per_batch: int = 30) -> Iterator[pd.DataFrame]:
        """The rows of `days` (default: every stored day), `days_per_batch` days at a time, so a pass over a
        year of vectors holds a month of them in memory, not the year."""
        days = self.days() if days is None else list(days)
        for start in range(0, len(days), days_per_batch):
            yield self.read(days[start:start + days_per_batch], columns=columns)

    def num_rows(self, days: Sequence[str] | None = None) -> int:
        """Rows stored on `days` (default: all), from the Parquet footers: no row is read."""
        import pyarrow.parquet as pq

        days = self.days() if days is None else list(days)
        return sum(pq.ParquetFile(self.folder / f"{day}.parquet").metadata.num_rows for day in days)

    def _empty(self, columns: Sequence[str] | None) -> pd.DataFrame:
        import pyarrow.parquet as pq

        stored = self.days()
        if stored:
            schema = pq.read_schema(self.folder / f"{stored[0]}.parquet")
            return schema.empty_table().to_pandas()[list(columns) if columns else slice(None)]
        return pd.DataFrame(columns=list(columns or []))

    def _log(self, days: Sequence[str]) -> None:
        if self.read_log is None or not days:
            return
        self.read_log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.read_log, "a") as log:
            for day in days:
                log.write(json.dumps({"run_id": self.run_id, "reader": self.reader, "asset": self.asset,
                                      "day": day}) + "\n")


@dataclass(frozen=True)
class DayChanges:
    """How the stored days differ from the days a state folded in."""

    new: list[str] = field(default_factory=list)  # stored, never folded in
    changed: list[str] = field(default_factory=list)  # folded in, written again since
    removed: list[str] = field(default_factory=list)  # folded in, no longer stored

    @property
    def only_new(self) -> bool:
        """True when the state can be brought up to date by adding the new days alone."""
        return not self.changed and not self.removed


def changes(stored: dict[str, str], folded: dict[str, str]) -> DayChanges:
    """Compare `stored` (day -> fingerprint, StoredDays.fingerprints) with what a state `folded` in."""
    return DayChanges(new=sorted(set(stored) - set(folded)),
                      changed=sorted(d for d in set(stored) & set(folded) if stored[d] != folded[d]),
                      removed=sorted(set(folded) - set(stored)))


def read_ledger(folder: str | os.PathLike) -> dict[str, dict[str, str]]:
    """{upstream asset: {day: fingerprint}} a state folder recorded (empty when it has none)."""
    path = Path(folder) / LEDGER_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def write_ledger(folder: str | os.PathLike, ledger: dict[str, dict[str, str]]) -> None:
    (Path(folder) / LEDGER_FILE).write_text(json.dumps(ledger, indent=1, sort_keys=True))
