"""A materialization killed with SIGKILL mid-write corrupts nothing, and two at once never mix their days.

Both tests run the real CLI (`dagster asset materialize` on the ingestion slice of the demo graph) in its own
process group and stop it with SIGKILL by group, never waiting on SIGTERM (a process here can inherit SIGTERM
as ignored). A `sitecustomize` on the CLI's PYTHONPATH injects the faults at the OS boundary: it can hold the
n-th Parquet write between "temporary file complete" and `os.replace`, and it reports when a writer has to
wait for the asset's lock.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import yaml

from opensentiment_pipeline import definitions
from opensentiment_pipeline.defs import partitions
from opensentiment_pipeline.defs.assets.ingest import DEMO_SOURCE
from opensentiment_pipeline.defs.resources import ParquetIOManager
from opensentiment_pipeline_tests.conftest import REPO_ROOT

DAGSTER = Path(sys.executable).with_name("dagster")
FIRST, LAST = partitions.whole_range()
SLICE = "raw_articles,rejected_rows"
STALLED_DAY = "2026-11-22"  # the demo corpus has articles on 2026-11-20 .. 2026-11-24
DEMO_ROWS = 297  # its articles after deduplication, as test_pipeline.py checks
FAULTS = textwrap.dedent('''
    """Fault injection for test_crash_and_concurrency; only active in the dagster CLI processes it starts."""
    import fcntl, os, pathlib, time

    _replace, _flock, _writes = os.replace, fcntl.flock, [0]

    def replace(src, dst, *args, **kwargs):
        # count raw_articles' day files only: rejected_rows is filed by day too, and its days come first
        if "/raw_articles/" in str(src) and ".parquet." in str(src) and str(src).endswith(".tmp"):
            _writes[0] += 1
            if _writes[0] == int(os.environ.get("TEST_STALL_AT_WRITE", "0")):
                pathlib.Path(os.environ["TEST_STALLED"]).write_text(str(src))
                until = os.environ.get("TEST_STALL_UNTIL", "")
                deadline = time.monotonic() + float(os.environ.get("TEST_STALL_SECONDS", "600"))
                while not (until and os.path.exists(until)) and time.monotonic() < deadline:
                    time.sleep(0.05)
        return _replace(src, dst, *args, **kwargs)

    def flock(fd, operation):
        if operation == fcntl.LOCK_EX and os.environ.get("TEST_WAITING"):
            try:
                return _flock(fd, operation | fcntl.LOCK_NB)
            except BlockingIOError:
                pathlib.Path(os.environ["TEST_WAITING"]).write_text("waiting for the lock")
        return _flock(fd, operation)

    os.replace, fcntl.flock = replace, flock
''')


def _config(path: Path, source_name: str) -> Path:
    config = {"execution": {"config": {"in_process": {}}},
              "ops": {"raw_articles": {"config": {"sources": [{**DEMO_SOURCE, "name": source_name}]}}}}
    path.write_text(yaml.safe_dump(config))
    return path


class Cli:
    """`dagster asset materialize` of the ingestion slice over every day, in its own process group."""

    def __init__(self, home: Path, source_name: str, **faults: str):
        (home / "dagster").mkdir(parents=True, exist_ok=True)
        (home / "site").mkdir(exist_ok=True)
        (home / "site" / "sitecustomize.py").write_text(FAULTS)
        env = {**os.environ, "DAGSTER_HOME": str(home / "dagster"), "OPENSENTIMENT_HOME": str(home / "store"),
               "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db", "HF_HUB_OFFLINE": "1",
               "PYTHONPATH": os.pathsep.join([str(home / "site"), str(REPO_ROOT)]), **faults}
        self.log = home / f"{source_name}.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [str(DAGSTER), "asset", "materialize", "--select", SLICE, "--partition-range", f"{FIRST}...{LAST}",
                 "-m", "opensentiment_pipeline.definitions", "-c", str(_config(home / f"{source_name}.yaml", source_name))],
                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, timeout: float = 240) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"dagster CLI still running after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)


def _wait_for(path: Path, cli: Cli, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if cli.process.poll() is not None or time.monotonic() > deadline:
            cli.kill()
            raise AssertionError(f"{path.name} never appeared:\n{cli.log.read_text()[-3000:]}")
        time.sleep(0.05)


def _days(store: Path, asset: str = "raw_articles") -> dict[str, pd.DataFrame]:
    """Every stored day file, read on its own (a corrupt file fails here)."""
    return {f.stem: pd.read_parquet(f) for f in sorted((store / "assets" / asset).glob("*.parquet"))}


def _sources(days: dict[str, pd.DataFrame]) -> dict[str, set[str]]:
    return {day: set(frame["source"]) for day, frame in days.items() if len(frame)}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sigkill_mid_write_leaves_every_stored_day_whole_and_the_next_run_succeeds(tmp_path):
    store = tmp_path / "store"
    first = dg.materialize(
        [a for a in definitions.ASSETS if "raw_articles" in {k.to_user_string() for k in a.keys}],
        resources=definitions.resources_for(store, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db"),
        run_config={"ops": {"raw_articles": {"config": {"sources": [{**DEMO_SOURCE, "name": "first"}]}}}},
        instance=dg.DagsterInstance.ephemeral(), tags=partitions.range_tags())
    assert first.success
    folder = store / "assets" / "raw_articles"
    before = {f.name: _sha(f) for f in folder.glob("*.parquet")}
    keys = partitions.DAILY.get_partition_keys()
    assert len(before) == len(keys)

    # Hold the write of a day with articles between "temporary file complete" and the rename, then SIGKILL
    # the group: the days before it are rewritten, it and the days after it must be exactly as they were.
    stalled = keys.index(STALLED_DAY)
    killed = Cli(tmp_path, "killed", TEST_STALL_AT_WRITE=str(stalled + 1), TEST_STALLED=str(tmp_path / "stalled"))
    _wait_for(tmp_path / "stalled", killed)
    killed.kill()
    assert killed.process.returncode == -signal.SIGKILL

    days = _days(store)  # every file still reads as Parquet
    assert sorted(days) == keys
    assert set().union(*_sources({k: days[k] for k in keys[:stalled]}).values()) == {"killed"}
    assert set().union(*_sources({k: days[k] for k in keys[stalled:]}).values()) == {"first"}
    assert all(_sha(folder / f"{k}.parquet") == before[f"{k}.parquet"] for k in keys[stalled:])
    leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(f".{STALLED_DAY}.parquet.")
    # The IO manager reads the stored days only, never the killed writer's temporary file.
    context = dg.build_input_context(asset_key="raw_articles", asset_partitions_def=partitions.DAILY,
                                     asset_partition_key_range=dg.PartitionKeyRange(FIRST, LAST))
    loaded = ParquetIOManager(base_dir=str(store / "assets")).load_input(context)
    assert len(loaded) == sum(len(frame) for frame in days.values()) == DEMO_ROWS

    again = Cli(tmp_path, "again")
    assert again.wait() == 0, again.log.read_text()[-3000:]
    assert set().union(*_sources(_days(store)).values()) == {"again"}
    assert sum(len(frame) for frame in _days(store).values()) == DEMO_ROWS
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]  # the leftover was cleared


def test_two_runs_of_the_same_days_at_once_never_mix_their_days(tmp_path):
    # Run A stalls in the middle of writing its days, holding the asset's lock, until run B is seen waiting for
    # that lock (at most 3 minutes); without the lock B would write all days meanwhile and A would then
    # overwrite only some of them.
    a = Cli(tmp_path, "run_a", TEST_STALL_AT_WRITE="3", TEST_STALLED=str(tmp_path / "a_stalled"),
            TEST_STALL_UNTIL=str(tmp_path / "b_waiting"), TEST_STALL_SECONDS="180")
    try:
        _wait_for(tmp_path / "a_stalled", a)
        b = Cli(tmp_path, "run_b", TEST_WAITING=str(tmp_path / "b_waiting"))
        try:
            assert a.wait(timeout=420) == 0, a.log.read_text()[-3000:]
            assert b.wait(timeout=420) == 0, b.log.read_text()[-3000:]
        finally:
            b.kill()
    finally:
        a.kill()
    days = _days(tmp_path / "store")
    assert sorted(days) == partitions.DAILY.get_partition_keys()
    sources = _sources(days)
    assert sorted(sources) == ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24"]
    assert all(names == {"run_b"} for names in sources.values()), sources  # B's days, all of them
    assert (tmp_path / "b_waiting").exists()  # B really had to wait for A's days
    assert sum(len(frame) for frame in days.values()) == DEMO_ROWS
    folder = tmp_path / "store" / "assets" / "raw_articles"
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
