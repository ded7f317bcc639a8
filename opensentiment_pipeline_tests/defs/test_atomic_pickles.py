"""Values stored by the default IO manager (adapter paths, reports) survive a write that fails half-way."""

from __future__ import annotations

import dagster as dg
import pytest

from opensentiment_pipeline.defs.resources import AtomicPickleIOManager


class _FailsToPickle:
    def __reduce__(self):
        raise RuntimeError("cannot pickle this")


def _materialize_twice(tmp_path, io_manager) -> tuple[dg.ExecuteInProcessResult, list]:
    values = [{"adapter": "runs/1/sentiment_adapter", "padding": "x" * 200_000},
              ["y" * 200_000, _FailsToPickle()]]  # the string reaches the file before pickling fails
    seen: list = []

    @dg.asset
    def report():
        return values.pop(0)

    @dg.asset
    def reader(report) -> None:
        seen.append(report)

    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        run = dict(resources={"io_manager": io_manager}, instance=instance)
        assert dg.materialize([report], **run).success
        failed = dg.materialize([report], raise_on_error=False, **run)
        assert not failed.success
        return dg.materialize([report, reader], selection=[reader], raise_on_error=False, **run), seen


def test_a_pickle_write_that_fails_half_way_keeps_the_last_stored_value(tmp_path):
    result, seen = _materialize_twice(tmp_path, AtomicPickleIOManager())
    assert result.success
    assert seen == [{"adapter": "runs/1/sentiment_adapter", "padding": "x" * 200_000}]
    storage = tmp_path / "dagster" / "storage"
    assert (storage / "report").is_file() and not list(storage.rglob("*.tmp"))  # no temporary file left behind


def test_dagsters_own_filesystem_io_manager_would_lose_it():
    # Why AtomicPickleIOManager exists: the default writes in place, so the same failure truncates the value.
    pytest.importorskip("upath")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        result, seen = _materialize_twice(Path(tmp), dg.FilesystemIOManager())
        assert not result.success and seen == []
