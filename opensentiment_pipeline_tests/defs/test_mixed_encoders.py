"""Every asset that reads article vectors refuses vectors from two adapters, naming the stale days."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pandas as pd

from opensentiment_pipeline import definitions
from opensentiment_pipeline.defs import partitions
from opensentiment_pipeline.defs.assets import analysis, leaning, search
from opensentiment_pipeline_tests.defs.stubs import upstream_stubs

DAYS = ["2026-11-20", "2026-11-21", "2026-11-22"]


def test_map_bias_axis_and_index_refuse_vectors_of_two_adapters(tmp_path):
    ids = [f"a{i}" for i in range(30)]
    rng = np.random.default_rng(0)
    raw = pd.DataFrame({"article_id": ids, "outlet": [f"outlet {i % 3}" for i in range(30)], "title": "t",
                        "text": "some words here", "published_at": pd.Timestamp("2026-11-20", tz="UTC"),
                        "source": "stub", "leaning": None})
    # The night after a new adapter: the last day embedded by "new", the two before it still by "old".
    embedded = pd.DataFrame({"article_id": ids, "embedding": list(rng.normal(size=(30, 8)).astype(np.float32)),
                             "model_version": ["old"] * 20 + ["new"] * 10, "partition_day": np.repeat(DAYS, 10),
                             "sentiment": "neutral", "sentiment_confidence": 0.5})
    adapter_dir = tmp_path / "adapter"
    adapter_dir.mkdir()
    (adapter_dir / "mlflow_run.json").write_text(json.dumps({"run_id": "new"}))

    def failures(assets: list) -> dict[str, str]:
        result = dg.materialize(
            [*upstream_stubs(raw, embedded, adapter_dir, points=points), *assets],
            resources=definitions.resources_for(tmp_path, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db"),
            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
            tags=partitions.range_tags())
        return {e.step_key: str(e.step_failure_data.error) for e in result.all_events if e.is_step_failure}

    points = None
    errors = failures([analysis.outlet_clusters, search.article_index])
    assert not (tmp_path / "index").exists() and not (tmp_path / "assets" / "outlet_clusters.parquet").exists()
    errors |= failures([leaning.outlet_leaning])
    assert set(errors) == {"outlet_clusters", "outlet_leaning", "article_index"}
    for asset, message in errors.items():
        assert (f"{asset}: article_embeddings holds vectors from 2 adapter versions (new: 1 day, old: 2 days)"
                in message)
        assert "stale days (not made by new): 2026-11-20..2026-11-21 (2 days)" in message
        assert "--select 'article_embeddings+' --partition-range 2026-11-20...2026-11-21" in message
    assert not (tmp_path / "assets" / "outlet_leaning.parquet").exists()
