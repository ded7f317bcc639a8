"""What .ci/run relies on: `dagster asset materialize` exits non-zero when a blocking asset check fails, so a CI
step that runs the README's command (`make demo`) goes red when evaluation_report's blocking checks fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DEFS = '''
import dagster as dg

@dg.asset
def numbers() -> list[int]:
    return [1, 2, 3]

@dg.asset_check(asset=numbers, blocking=True)
def numbers_sum_to_ten(numbers: list[int]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=sum(numbers) == 10, metadata={"sum": sum(numbers)})

@dg.asset
def doubled(numbers: list[int]) -> list[int]:
    return [2 * n for n in numbers]

defs = dg.Definitions(assets=[numbers, doubled], asset_checks=[numbers_sum_to_ten])
'''


def test_cli_materialize_exits_non_zero_when_a_blocking_check_fails(tmp_path):
    (tmp_path / "defs.py").write_text(DEFS)
    dagster = Path(sys.executable).parent / "dagster"
    done = subprocess.run([str(dagster), "asset", "materialize", "--select", "*", "-f", "defs.py"], cwd=tmp_path,
                          env={**os.environ, "DAGSTER_HOME": str(tmp_path)}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1
    assert "1 blocking asset check failed" in done.stdout + done.stderr
    assert 'Dependencies for step doubled failed' in done.stdout + done.stderr  # downstream never ran
