"""Which stored days an incremental asset folds in tonight, or why it rebuilds instead.

An asset reads one day-partitioned input (the primary: the rows it folds in) and, for the same days, others
(companions: e.g. raw_articles for the publish dates of entity_mentions' rows). Its state folder's ledger
(defs/stored_days.py) records the fingerprint of every day of each input it folded in. A night folds in the
primary's new days alone when nothing it folded in changed or went away, in any input; anything else rebuilds,
reading every stored day in batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from opensentiment_pipeline.defs.stored_days import StoredDays, changes

DAYS_PER_BATCH = 30  # days read at once by a rebuild: a month of rows in memory, not the archive


@dataclass(frozen=True)
class FoldPlan:
    """`days` to read and fold in (every stored day of the primary when `rebuild`), why a rebuild is needed
    (`reason`, "" when folding), and the ledger to record once they are folded in."""

    rebuild: bool
    days: list[str]
    reason: str
    ledger: dict[str, dict[str, str]]


def plan_fold(primary: StoredDays, companions: Sequence[StoredDays], ledger: dict[str, dict[str, str]], *,
              rebuild: bool, settings_reason: str = "", new_days_last: bool = False) -> FoldPlan:
    """The plan for one run. `settings_reason` (non-empty) forces a rebuild and says why (e.g. another encoder);
    `new_days_last`: the asset's result depends on the order days are folded in, so a new day older than a
    folded one rebuilds too."""
    prints = {days.asset: days.fingerprints() for days in (primary, *companions)}
    folded = ledger.get(primary.asset, {})
    change = changes(prints[primary.asset], folded)
    reason = ("rebuild: true" if rebuild else "no state yet" if not ledger else settings_reason)
    if not reason and not change.only_new:
        reason = f"{primary.asset} days changed {change.changed[:3]} or removed {change.removed[:3]} since folded in"
    if not reason:
        for days in companions:
            seen = ledger.get(days.asset, {})
            stale = sorted(d for d in folded if seen.get(d) != prints[days.asset].get(d))
            if stale:
                reason = f"{days.asset} days {stale[:3]} changed since folded in"
                break
    if not reason and new_days_last and change.new and folded and min(change.new) < max(folded):
        reason = f"{primary.asset} day {min(change.new)} is older than the newest folded day {max(folded)}"
    take = sorted(prints[primary.asset]) if reason else change.new
    for days in companions:
        missing = [d for d in take if d not in prints[days.asset]]
        if missing:
            raise FileNotFoundError(f"{primary.asset} has days {missing[:3]} that {days.asset} has not stored: "
                                    f"materialize {days.asset} for them first (--partition {missing[0]})")
    keep = set(take) | (set() if reason else set(folded))
    new_ledger = {asset: {d: p for d, p in day_prints.items() if d in keep} for asset, day_prints in prints.items()}
    return FoldPlan(rebuild=bool(reason), days=take, reason=reason, ledger=new_ledger)


def batches(days: Sequence[str], size: int = DAYS_PER_BATCH) -> list[list[str]]:
    """`days` cut into runs of `size`, oldest first."""
    days = sorted(days)
    return [days[i:i + size] for i in range(0, len(days), size)]
