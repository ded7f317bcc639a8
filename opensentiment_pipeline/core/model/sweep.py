"""Hyper-parameter grids: expand a grid into trials and pick the best trial by a validation score."""

import itertools
from collections.abc import Mapping, Sequence
from typing import Any


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """All combinations of the grid's values, in a stable order (keys sorted, values as given).

    >>> expand_grid({"lr": [1e-3, 2e-3], "r": [8]})
    [{'lr': 0.001, 'r': 8}, {'lr': 0.002, 'r': 8}]
    """
    empty = [key for key, values in grid.items() if len(values) == 0]
    if empty:
        raise ValueError(f"grid entries {empty} have no values; give each at least one value or remove it")
    keys = sorted(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def best_trial(scores: Sequence[float]) -> int:
    """Index of the highest validation score; the earliest trial wins ties (cheaper settings come first)."""
    if not scores:
        raise ValueError("no trials were scored")
    return max(range(len(scores)), key=lambda i: (scores[i], -i))
