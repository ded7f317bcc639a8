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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from opensentiment_pipeline.core.day_ledger import (
    LEDGER_FILE,
    DayChanges,
    changes,
    read_ledger,
    write_ledger,
)

__all__ = ["LEDGER_FILE", "DayChanges", "FoldPlan", "StoredDays", "changes", "plan_fold", "read_ledger",
           "vector_signature", "write_ledger"]



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

    def non_empty(self, wanted: Sequence[str]) -> list[str]:
        """The days of `wanted` that are stored and hold rows (from the Parquet footers: nothing is read)."""
        stored = set(self.days())
        return [day for day in wanted if day in stored and self.num_rows([day])]

    def stored(self, wanted: Sequence[str]) -> list[str]:
        """The days of `wanted` that are stored."""
        stored = set(self.days())
        return [day for day in wanted if day in stored]

    def fingerprints(self) -> dict[str, str]:
        """Day -> a stat of its file (inode, size, mtime): changes whenever the day is written again."""
        prints = {}
        for day in self.days():
            stat = (self.folder / f"{day}.parquet").stat()
            prints[day] = f"{stat.st_ino}-{stat.st_size}-{stat.st_mtime_ns}"
        return prints

    def read(self, days: Sequence[str] | None = None, columns: Sequence[str] | None = None, *,
             optional: Sequence[str] = ()) -> pd.DataFrame:
        """The rows of `days` (default: every stored day) as one frame, `columns` only when given; a day stored
        without one of the `optional` columns (written before it existed) gets it as None."""
        from opensentiment_pipeline.defs.resources import LOCK_FILE, _locked

        days = self.days() if days is None else list(days)
        stored = set(self.days())
        missing = [day for day in days if day not in stored]
        if missing:
            raise FileNotFoundError(f"{self.asset} has no stored day {missing[:5]} in {self.folder}: materialize "
                                    f"it first, e.g. dagster asset materialize --select {self.asset} "
                                    f"--partition {missing[0]}")
        with _locked(self.folder / LOCK_FILE, exclusive=False):
            frames = [self._read_day(day, columns, optional) for day in days]
        self._log(days)
        if not frames:
            return self._empty(columns)
        non_empty = [f for f in frames if len(f)] or frames[:1]  # concat of empty frames warns and loses dtypes
        return pd.concat(non_empty, ignore_index=True)

    def _read_day(self, day: str, columns: Sequence[str] | None, optional: Sequence[str]) -> pd.DataFrame:
        import pyarrow.parquet as pq

        path = self.folder / f"{day}.parquet"
        if not columns:
            return pd.read_parquet(path)
        absent = set(optional) - set(pq.read_schema(path).names) if optional else set()
        frame = pd.read_parquet(path, columns=[c for c in columns if c not in absent])
        return frame.assign(**{c: None for c in absent})[list(columns)]

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
class FoldPlan:
    """What an incremental asset does this run: fold in `days` alone, or rebuild from every stored day."""

    rebuild: bool
    reason: str  # why it rebuilds ("" when it folds)
    days: list[str]  # the days to read: the new ones, or every stored day on a rebuild
    stored: dict[str, dict[str, str]]  # the ledger to write once the state is saved: {asset: fingerprints}


def plan_fold(inputs: dict[str, StoredDays], ledger: dict[str, dict[str, str]], *,
              rebuild_reason: str = "") -> FoldPlan:
    """Fold in the days no input has folded in yet, or rebuild when `rebuild_reason` is given (no state, other
    settings, `rebuild: true`, a fit that is due) or when a folded-in day of any input was written again or
    removed since (a re-ingestion or re-embedding: its old rows cannot be told apart from the new ones)."""
    stored = {name: days.fingerprints() for name, days in inputs.items()}
    if not rebuild_reason:
        for name, prints in stored.items():
            diff = changes(prints, ledger.get(name, {}))
            if not diff.only_new:
                touched = diff.changed + diff.removed
                rebuild_reason = (f"{len(touched)} day(s) of {name} folded in before were written again or removed "
                                  f"since, e.g. {touched[:3]}")
                break
    if rebuild_reason:
        every = sorted(set().union(*(prints for prints in stored.values())))
        return FoldPlan(rebuild=True, reason=rebuild_reason, days=every, stored=stored)
    new = sorted(set().union(*(changes(prints, ledger.get(name, {})).new for name, prints in stored.items())))
    return FoldPlan(rebuild=False, reason="", days=new, stored=stored)


def vector_signature(embeddings: StoredDays, days: Sequence[str], *, asset: str) -> tuple[str | None, str | None]:
    """(adapter version, text window) of the vectors stored on `days`, reading those two columns only; raises
    (naming the days to re-embed) when the days mix adapters or text windows, as every vector reader does."""
    from opensentiment_pipeline.core.vectors import encoder_versions
    from opensentiment_pipeline.defs.partitions import PARTITION_COLUMN

    if not days:
        return None, None
    frame = embeddings.read(days, columns=["model_version", "text_window", PARTITION_COLUMN], optional=["text_window"])
    version = encoder_versions.check_one_adapter(frame, asset=asset, day_column=PARTITION_COLUMN)
    windows = frame["text_window"].dropna().unique()
    return version, (str(windows[0]) if len(windows) else None)
