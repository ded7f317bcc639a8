"""Model page: the registry champion and the latest evaluation (macro-F1 with its 95 % interval, the baselines,
per-class scores, confusion matrix), with links to the MLflow run and the Dagster asset."""

from __future__ import annotations

import plotly.graph_objects as go
from dash import dcc, html

from opensentiment_pipeline.dashboard import components as ui
from opensentiment_pipeline.dashboard.components import DashboardContext

PATH = "/model"
TITLE = "Model"
EVALUATION_COLUMNS = ["adapter_version", "evaluation_run_id", "n", "macro_f1", "macro_f1_ci95_low",
                      "macro_f1_ci95_high", "accuracy", "ece"]
CHAMPION_COLUMNS = ["registered_model", "champion_version", "registered_version", "promoted", "promotion_reason",
                    "adapter_version", "evaluation_run_id", "mlflow_experiment_id"]


@ui.page_guard
def layout(ctx: DashboardContext) -> html.Div:
    store = ctx.store
    columns = EVALUATION_COLUMNS + [c for c in ("mlflow_experiment_id",) if c in store.columns("model_evaluation")]
    evaluation = store.table("model_evaluation", asset="evaluation_report", columns=columns).iloc[0]
    per_class = store.table("model_per_class", asset="evaluation_report",
                            columns=["label", "precision", "recall", "f1", "support"])
    baselines = store.table("model_baselines", asset="evaluation_report", columns=["model", "macro_f1", "accuracy"])
    confusion = store.table("model_confusion", asset="evaluation_report",
                            columns=["true_label", "predicted_label", "count"])
    return html.Div([
        html.H2(TITLE),
        champion_block(ctx),
        html.H3("Latest evaluation"),
        html.P(id="model-macro-f1", children=[
            html.Strong(f"macro-F1 {evaluation['macro_f1']:.3f}"),
            f" (95 % interval {evaluation['macro_f1_ci95_low']:.3f}–{evaluation['macro_f1_ci95_high']:.3f}), "
            f"accuracy {evaluation['accuracy']:.3f}, calibration error {evaluation['ece']:.3f}, "
            f"on {int(evaluation['n'])} held-out items. ",
            *_run_link(ctx, evaluation),
            html.A("Dagster asset", href=ctx.dagster_asset_url("evaluation_report"), target="_blank")]),
        html.H4("Against the baselines (same test rows)"), ui.table(baselines, table_id="model-baselines"),
        html.H4("Per class"), ui.table(per_class, table_id="model-per-class"),
        html.H4("Confusion matrix (rows: true label)"),
        dcc.Graph(figure=confusion_figure(confusion), config={"displaylogo": False}),
    ])


def champion_block(ctx: DashboardContext) -> html.Div:
    store = ctx.store
    if not store.has("model_champion"):
        return ui.notice(ui.MissingAsset("adapter_promotion", "model_champion"))
    champion = store.table("model_champion", asset="adapter_promotion", columns=CHAMPION_COLUMNS).iloc[0]
    evaluated = (f"The evaluation below is of registry version {champion['registered_version']}"
                 + (", the champion." if champion["registered_version"] == champion["champion_version"]
                    else f"; the champion stays version {champion['champion_version']}."))
    adapter_run = html.A("the adapter's MLflow run", target="_blank",
                         href=ctx.mlflow_run_url(champion["mlflow_experiment_id"], champion["adapter_version"]))
    return html.Div(id="model-champion", children=[
        html.P([html.Strong(f"Champion: {champion['registered_model']} version {champion['champion_version']}"),
                f". {evaluated} Promotion: {champion['promotion_reason']}. Training: ", adapter_run, "."])])


def _run_link(ctx: DashboardContext, evaluation) -> list:
    """A link to the evaluation's MLflow run, when the store knows it (older stores do not)."""
    run_id = evaluation.get("evaluation_run_id")
    if not isinstance(run_id, str) or not run_id:
        return []
    return [html.A("MLflow run", href=ctx.mlflow_run_url(evaluation.get("mlflow_experiment_id"), run_id),
                   target="_blank", id="model-mlflow-link"), " · "]


def confusion_figure(confusion) -> go.Figure:
    labels = list(dict.fromkeys(confusion["true_label"]))
    matrix = confusion.pivot(index="true_label", columns="predicted_label", values="count").loc[labels, labels]
    fig = go.Figure(go.Heatmap(z=matrix.to_numpy(), x=labels, y=labels, colorscale="Blues", text=matrix.to_numpy(),
                               texttemplate="%{text}", hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>"))
    fig.update_layout(height=380, width=460, margin={"l": 90, "r": 20, "t": 20, "b": 60},
                      xaxis={"title": "predicted"}, yaxis={"title": "true", "autorange": "reversed"})
    return fig
