"""configs/sweep.yaml, which the README's sweep command names, ships and is valid run config for the sweep job."""

import re

import dagster as dg
import yaml

from opensentiment_pipeline import definitions
from opensentiment_pipeline.core.model.sweep import expand_grid
from opensentiment_pipeline.defs.assets.model import SentimentAdapterConfig
from opensentiment_pipeline.defs.sweep import trial_settings
from opensentiment_pipeline_tests.conftest import REPO_ROOT


def test_the_shipped_sweep_config_is_valid_and_expands_to_four_trials():
    config = yaml.safe_load((REPO_ROOT / "configs" / "sweep.yaml").read_text())
    job = definitions.defs.resolve_job_def("adapter_sweep_job")
    processed = dg.validate_run_config(job, config)  # raises DagsterInvalidConfigError when it does not fit
    sweep = processed["ops"]["run_adapter_sweep"]["config"]
    trials = [trial_settings(SentimentAdapterConfig(**sweep["base"]), t) for t in expand_grid(sweep["grid"])]
    assert [(t.learning_rate, t.lora_r) for t in trials] == [(5e-4, 8), (5e-4, 16), (1e-3, 8), (1e-3, 16)]
    assert {(t.epochs, t.max_length) for t in trials} == {(3, 128)}


def test_every_config_file_the_readme_and_makefile_name_ships():
    text = (REPO_ROOT / "README.md").read_text() + (REPO_ROOT / "Makefile").read_text()
    named = set(re.findall(r"-c (configs/[\w./-]+\.yaml)", text))
    assert "configs/sweep.yaml" in named
    assert sorted(p for p in named if not (REPO_ROOT / p).is_file()) == []
