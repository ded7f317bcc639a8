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

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/orchestration_overhead.py [--fast] [--runs 2]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import os
import pkgutil
import sys
import tempfile
import threading
import time
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
    return parser.parse_args()


class CoreTimer:
    """Records (start, end) of each outermost call into a core function."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float]] = []
        self._depth = threading.local()

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
        return sum(e - s for _, s, e in inside), sorted({n for n, _, _ in inside})


def report(args, attempt: int, timer: CoreTimer, stats, wall: float, n_wrapped: int, tracking_uri: str) -> None:
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
    print(f"# orchestration_overhead run {attempt} | {os.cpu_count()} CPUs | fast={args.fast} | tracking "
          f"{tracking_uri.split(':')[0]} | {n_wrapped} core functions timed")
    print(table.round(3).to_markdown(index=False))
    print(f"\nsum of steps {step_total:.1f} s, of which core {core_total:.1f} s: step overhead "
          f"{step_total - core_total:.1f} s = {(step_total - core_total) / core_total:.1%} of the core work")
    print(f"whole run (wall, in process) {wall:.1f} s: overhead incl. run start/stop and event log "
          f"{wall - core_total:.1f} s = {(wall - core_total) / core_total:.1%} of the core work", flush=True)


def main() -> int:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import dagster as dg

    timer = CoreTimer()
    wrapped = timer.install()  # before the asset modules look anything up
    from opensentiment_pipeline import definitions
    from opensentiment_pipeline.defs import partitions

    work = Path(tempfile.mkdtemp(prefix="orchestration_overhead_"))
    tracking_uri = args.tracking_uri or f"sqlite:///{work}/mlflow.db"
    run_config = {"ops": {"annotation_quality_report": {"config": {"expert_path": str(work / "absent.parquet")}}}}
    if args.fast:
        run_config["ops"]["sentiment_adapter"] = {"config": {"epochs": 4, "lora_r": 8, "max_length": 64}}
    (work / "dagster").mkdir()
    resources = definitions.resources_for(work / "home", tracking_uri=tracking_uri)
    with dg.instance_for_test(temp_dir=str(work / "dagster")) as instance:
        for attempt in range(1, args.runs + 1):
            timer.calls.clear()
            start = time.time()
            result = dg.materialize([*definitions.ASSETS, *definitions.ASSET_CHECKS], instance=instance,
                                    resources=resources, run_config=run_config, tags=partitions.range_tags())
            wall = time.time() - start
            assert result.success, "the demo run failed"
            report(args, attempt, timer, instance.get_run_step_stats(result.run_id), wall, len(wrapped),
                   tracking_uri)
    return 0


if __name__ == "__main__":
    sys.exit(main())
