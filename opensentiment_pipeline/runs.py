"""Side-by-side comparison of the last N MLflow runs: the params that differ, and the metrics.

`opensentiment runs --last 5 [--asset sentiment_adapter]` prints it; the MLflow UI's "Compare" view shows
the same runs with per-epoch charts.
"""

import pandas as pd


def compare_runs(tracking_uri: str, *, experiment: str, last: int, asset: str | None) -> pd.DataFrame:
    """One column per run (newest first); rows: run info, params whose values differ, then metrics.

    Params equal across all shown runs are left out: they are not what changed between runs.
    """
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = [e.name for e in client.search_experiments()]
        raise ValueError(f"no MLflow experiment {experiment!r} at {tracking_uri}; experiments there: {names}")
    query = f"tags.dagster_asset = '{asset}'" if asset else ""
    runs = client.search_runs([found.experiment_id], filter_string=query, order_by=["attributes.start_time DESC"],
                              max_results=last)
    if not runs:
        raise ValueError(f"no runs{f' of asset {asset!r}' if asset else ''} in experiment {experiment!r}")
    columns = {}
    for run in runs:
        info = {"asset": run.data.tags.get("dagster_asset", ""), "status": run.info.status,
                "started": pd.Timestamp(run.info.start_time, unit="ms").strftime("%Y-%m-%d %H:%M")}
        params = {f"param.{k}": v for k, v in run.data.params.items()}
        metrics = {f"metric.{k}": round(v, 4) for k, v in run.data.metrics.items()}
        columns[run.info.run_id[:8]] = {**info, **params, **metrics}
    table = pd.DataFrame(columns)
    params = [i for i in table.index if i.startswith("param.")]
    same = [i for i in params if table.loc[i].nunique(dropna=False) <= 1]
    return table.drop(index=same)
