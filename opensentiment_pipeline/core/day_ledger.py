"""Which stored days a state folded in: day -> fingerprint per upstream asset, kept as days.json in the state
folder, and how the stored days differ from it. Plain files, no Dagster: the state-keeping code in core and the
assets' readers (defs/stored_days.py) share it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

LEDGER_FILE = "days.json"


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
