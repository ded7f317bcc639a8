"""Orchestration overhead: the demo graph through Dagster + MLflow against the core functions it calls.

Every public function of `opensentiment_pipeline.core.*` is wrapped with a timer (only the outermost call counts,
so a core function calling another is not counted twice), then the whole demo graph is materialized in one
in-process run over every day, as `make demo` does: Dagster instance on SQLite, MLflow on SQLite (the laptop) or
on a tracking server (`--tracking-uri http://...`, the team instance). Each step's Dagster time (step stats) is
split into the time inside core functions, which calling them directly with the same inputs would also spend,
and the rest: loading inputs through the IO manager, writing Parquet, MLflow runs, params and artifacts,
metadata, event-log writes. Core modules are imported before timing, so neither side pays for imports. The graph
is materialized `--runs` times in one process: the first run also pays one-time costs (importing mlflow, creating
its SQLite store), later runs show the steady state of a machine that has run the pipeline before.

`--team` runs the same graph on the team instance's engines (Postgres for Dagster, an MLflow server on Postgres
that stores the artifacts); `--event-batch-size 0,500` alternates Dagster's event batching run by run, so both
settings are measured side by side in one process, and prints the ratio.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/orchestration_overhead.py [--fast] [--runs 2]
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/orchestration_overhead.py --team --runs 5 --event-batch-size 0,500
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import os
import pkgutil
import shutil
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, not an installed one


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="the test suite's short training (4 epochs, r 8, "
                        "64 tokens) instead of the demo defaults")
    parser.add_argument("--runs", type=int, default=2, help="materializations in one process: the first pays "
                        "one-time costs (importing mlflow, creating its store), the next ones show steady state")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: SQLite in a temp dir)")
    parser.add_argument("--team", action="store_true", help="the team instance's engines instead of SQLite: "
                        "Dagster on Postgres (deploy/dagster.yaml) and an MLflow server on Postgres that stores "
                        "the artifacts, both started here by deploy/team_services.py; the steps still run in "
                        "this process, so the difference is storage and tracking, not celery")
    parser.add_argument("--event-batch-size", default="0", help="comma-separated DAGSTER_EVENT_BATCH_SIZE values, "
                        "taken in turn by run 1, 2, ... (Dagster writes a step's per-partition events in one "
                        "batch when > 0; only dagster-postgres implements batches, SQLite writes them one by one)")
    return parser.parse_args()


class CoreTimer:
    """Records (start, end) of each outermost call into a core function."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float]] = []
        self.excluded: list[tuple[float, float]] = []  # orchestration work called from inside a core function
        self._depth = threading.local()

    def exclude(self, fn):
        """`fn` is orchestration (an MLflow call a core function makes through a callback, such as the training
        loop's per-epoch `log_metrics`): its time inside a core call counts as overhead, not core work."""
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            start = time.time()
            try:
                return fn(*args, **kwargs)
            finally:
                if getattr(self._depth, "n", 0) > 0:
                    self.excluded.append((start, time.time()))
        return timed

    def wrap(self, name: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            depth = getattr(self._depth, "n", 0)
            self._depth.n = depth + 1
            start = time.time()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth.n = depth
                if depth == 0:
                    self.calls.append((name, start, time.time()))
        return timed

    def install(self) -> list[str]:
        import opensentiment_pipeline.core as core

        wrapped = []
        for info in pkgutil.iter_modules(core.__path__):
            module = importlib.import_module(f"{core.__name__}.{info.name}")
            for attr, value in list(vars(module).items()):
                if inspect.isfunction(value) and value.__module__ == module.__name__ and not attr.startswith("_"):
                    setattr(module, attr, self.wrap(f"{info.name}.{attr}", value))
                    wrapped.append(f"{info.name}.{attr}")
        return wrapped

    def seconds_between(self, start: float, end: float) -> tuple[float, list[str]]:
        inside = [(n, s, e) for n, s, e in self.calls if s >= start - 1e-3 and e <= end + 1e-3]
        callbacks = sum(e - s for s, e in self.excluded if s >= start - 1e-3 and e <= end + 1e-3)
        return sum(e - s for _, s, e in inside) - callbacks, sorted({n for n, _, _ in inside})


def report(args, attempt: int, timer: CoreTimer, stats, wall: float, n_wrapped: int, tracking_uri: str,
           storage: str, batch_size: str) -> dict:
    rows = []
    for s in sorted((s for s in stats if s.start_time and s.end_time), key=lambda s: s.start_time):
        step = s.end_time - s.start_time
        core, names = timer.seconds_between(s.start_time, s.end_time)
        rows.append({"step": s.step_key, "dagster step (s)": step, "core functions (s)": core,
                     "overhead (s)": step - core, "overhead / core": (step - core) / core if core else None,
                     "core calls": ", ".join(names)})
    table = pd.DataFrame(rows)
    core_total = table["core functions (s)"].sum()
    step_total = table["dagster step (s)"].sum()
    print(f"# orchestration_overhead run {attempt} | {os.cpu_count()} CPUs | fast={args.fast} | dagster {storage} | "
          f"tracking {tracking_uri.split(':')[0]} | DAGSTER_EVENT_BATCH_SIZE={batch_size} | {n_wrapped} core "
          "functions timed")
    print(table.round(3).to_markdown(index=False))
    print(f"\nsum of steps {step_total:.1f} s, of which core {core_total:.1f} s: step overhead "
          f"{step_total - core_total:.1f} s = {(step_total - core_total) / core_total:.1%} of the core work")
    print(f"whole run (wall, in process) {wall:.1f} s: overhead incl. run start/stop and event log "
          f"{wall - core_total:.1f} s = {(wall - core_total) / core_total:.1%} of the core work", flush=True)
    return {"run": attempt, "batch": batch_size, "core": core_total, "steps": step_total, "wall": wall}


def time_event_writes(instance) -> list[tuple[int, float]]:
    """Wrap the instance's event-log storage so each write (one event, or a batch) is recorded as
    (events written, seconds); the returned list fills as the runs go."""
    storage = instance.event_log_storage
    writes: list[tuple[int, float]] = []
    single, batch = storage.store_event, storage.store_event_batch
    in_batch = threading.local()  # a storage without batches writes a batch through store_event: count it once

    def store_event(event):
        start = time.perf_counter()
        try:
            return single(event)
        finally:
            if not getattr(in_batch, "on", False):
                writes.append((1, time.perf_counter() - start))

    def store_event_batch(events):
        start = time.perf_counter()
        in_batch.on = True
        try:
            return batch(events)
        finally:
            in_batch.on = False
            writes.append((len(events), time.perf_counter() - start))

    storage.store_event, storage.store_event_batch = store_event, store_event_batch
    return writes


def summary(rows: list[dict]) -> None:
    """Steady-state runs (every run after the first) per event batch size, side by side."""
    steady = pd.DataFrame(rows[1:])
    if steady.empty:
        return
    steady["step_overhead"] = steady["steps"] - steady["core"]
    steady["run_overhead"] = steady["wall"] - steady["core"]
    steady["batch"] = steady["batch"].astype(int)  # 500 before 1000
    table = steady.groupby("batch")[["core", "step_overhead", "run_overhead", "events", "event_seconds"]].median()
    table["run_overhead / core"] = table["run_overhead"] / table["core"]
    print("\n# steady state (runs 2..), median per DAGSTER_EVENT_BATCH_SIZE")
    print(table.round(3).to_markdown())
    if len(table) > 1:
        base = table["run_overhead"].iloc[0]
        for batch, row in table.iloc[1:].iterrows():
            print(f"run overhead with batch {batch} / with batch {table.index[0]}: {row['run_overhead'] / base:.2f}")


@contextmanager
def laptop_engines(work: Path, tracking_uri: str | None):
    """What `make demo` uses: Dagster on SQLite files, MLflow on SQLite (or `tracking_uri`); yields (instance, URI)."""
    import dagster as dg

    with dg.instance_for_test(temp_dir=str(work / "dagster")) as instance:
        yield instance, tracking_uri or f"sqlite:///{work}/mlflow.db"


@contextmanager
def team_engines(work: Path):
    """Postgres and an MLflow server (deploy/team_services.py) for the run's instance; yields (instance, URI)."""
    import dagster as dg

    from deploy.team_services import (DEPLOY_DIR, TeamServices, missing_binaries, start_mlflow, start_postgres,
                                      team_env)

    missing = [m for m in missing_binaries() if m.startswith(("postgres", "mlflow"))]
    if missing:
        raise SystemExit(f"--team needs {', '.join(missing)}")
    env = team_env(work / "team")
    (work / "team" / "logs").mkdir(parents=True)
    home = Path(env["DAGSTER_HOME"])
    home.mkdir()
    shutil.copy(DEPLOY_DIR / "dagster.yaml", home / "dagster.yaml")
    team = TeamServices(root=work / "team", env=env)
    try:
        start_postgres(team)
        start_mlflow(team, int(env["OPENSENTIMENT_MLFLOW_PORT"]))
        os.environ.update({k: v for k, v in env.items() if k.startswith("DAGSTER_PG_")})  # read by dagster.yaml
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield instance, env["MLFLOW_TRACKING_URI"]
    finally:
        team.stop_all()
        shutil.rmtree(env.get("OPENSENTIMENT_PG_DATA", work / "absent"), ignore_errors=True)


def main() -> int:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import dagster as dg

    timer = CoreTimer()
    wrapped = timer.install()  # before the asset modules look anything up
    import mlflow

    for name in ("log_metrics", "log_metric", "log_params", "log_artifacts", "log_artifact", "set_tag"):
        setattr(mlflow, name, timer.exclude(getattr(mlflow, name)))
    from opensentiment_pipeline import definitions
    from opensentiment_pipeline.defs import partitions

    work = Path(tempfile.mkdtemp(prefix="orchestration_overhead_"))
    batch_sizes = [b.strip() for b in args.event_batch_size.split(",") if b.strip()] or ["0"]
    run_config = {"ops": {"annotation_quality_report": {"config": {"expert_path": str(work / "absent.parquet")}}}}
    if args.fast:
        run_config["ops"]["sentiment_adapter"] = {"config": {"epochs": 4, "lora_r": 8, "max_length": 64}}
    (work / "dagster").mkdir()
    if args.team and args.tracking_uri:
        raise SystemExit("--team starts its own MLflow server; drop --tracking-uri")
    engines = team_engines(work) if args.team else laptop_engines(work, args.tracking_uri)
    rows = []
    with engines as (instance, tracking_uri):
        resources = definitions.resources_for(work / "home", tracking_uri=tracking_uri)
        storage = type(instance.event_log_storage).__name__
        writes = time_event_writes(instance)
        for attempt in range(1, args.runs + 1):
            batch_size = batch_sizes[(attempt - 1) % len(batch_sizes)]
            os.environ["DAGSTER_EVENT_BATCH_SIZE"] = batch_size  # read by Dagster at every event
            timer.calls.clear()
            timer.excluded.clear()
            writes.clear()
            start = time.time()
            result = dg.materialize([*definitions.ASSETS, *definitions.ASSET_CHECKS], instance=instance,
                                    resources=resources, run_config=run_config, tags=partitions.range_tags())
            wall = time.time() - start
            assert result.success, "the demo run failed"
            rows.append(report(args, attempt, timer, instance.get_run_step_stats(result.run_id), wall, len(wrapped),
                               tracking_uri, storage, batch_size))
            events, seconds = sum(n for n, _ in writes), sum(t for _, t in writes)
            print(f"event-log writes: {events} events in {len(writes)} writes, {seconds:.1f} s = "
                  f"{seconds / (wall - rows[-1]['core']):.0%} of the whole run's overhead", flush=True)
            rows[-1].update(events=events, event_seconds=seconds)
    summary(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
