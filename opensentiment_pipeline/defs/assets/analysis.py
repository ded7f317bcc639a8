"""Analysis assets: the outlet map (UMAP, HDBSCAN, keywords, outlet similarity) built on the topic vectors."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from opensentiment_pipeline.core.vectors import search
from opensentiment_pipeline.defs import map_state, stored_days
from opensentiment_pipeline.defs.metadata import table_preview
from opensentiment_pipeline.defs.partitions import SINGLE_RUN
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking
from opensentiment_pipeline.defs.stored_days import StoredDays


class OutletClustersConfig(dg.Config):
    n_components: int = Field(default=2, description="UMAP output dimensions (2 for the scatter plot)")
    n_neighbors: int = Field(default=15, description="UMAP neighbourhood size: larger keeps more global structure")
    min_dist: float = 0.1
    metric: str = Field(default="cosine", description="UMAP metric on the embeddings")
    min_cluster_size: int = Field(default=10, description="HDBSCAN: smallest group that counts as a cluster")
    min_samples: int | None = Field(default=None, description="HDBSCAN: higher = more points called noise")
    top_k: int = Field(default=8, description="keywords per cluster (c-TF-IDF)")
    random_state: int = 42
    projection: str = Field(default="umap", description="what draws the 2-D map: umap | tsne (HDBSCAN always "
                            "clusters on the UMAP output, so the topics do not change with the view)")
    n_outlet_groups: int | None = Field(default=None, description="flat outlet groups cut from the outlet "
                                       "dendrogram; None = cut at 0.7 x its top merge distance")
    min_topic_articles: int = Field(default=5, description="per-topic table: smallest (cluster, outlet) cell "
                                    "that gets a sentiment row")
    max_fit_articles: int = Field(default=20_000, ge=3, description="the map (UMAP, HDBSCAN, keywords) is fitted "
                                  "on a sample of at most this many articles, stratified by outlet and month; the "
                                  "others are placed with the fitted models (UMAP fits ~20,000 articles in a "
                                  "minute or two on 2 cores, and its cost and memory grow faster than linearly)")
    refit_every_days: int = Field(default=7, ge=1, description="fit the map again once the newest stored day is "
                                  "this many days after the newest day the fit saw")
    refit_noise_increase: float = Field(default=0.2, gt=0, description="fit again when the share of new "
                                        "articles HDBSCAN places as noise exceeds the fit's own noise share by this "
                                        "much (judged from 100 new articles on): the news moved away from the map")
    max_plot_points: int = Field(default=20_000, ge=1, description="points drawn in the scatter plots (a seeded "
                                 "uniform sample); the output table holds every article")
    rebuild: bool = Field(default=False, description="fit the map again now instead of placing the new days")
    state_dir: str | None = Field(default=None, description="folder of the map state (fit, points, outlet sums), "
                                  "replaced on each run; default: <home>/map beside the artifact store")


@dg.asset(io_manager_key="parquet_io_manager", group_name="analysis", backfill_policy=SINGLE_RUN)
def outlet_clusters(context: dg.AssetExecutionContext, config: OutletClustersConfig, raw_articles: StoredDays,
                    article_embeddings: StoredDays, mlflow_tracking: MlflowTracking,
                    artifacts: ArtifactStore) -> pd.DataFrame:
    """Every article's point on the map: article_id, outlet, x, y (UMAP or t-SNE view), cluster (HDBSCAN, -1 =
    noise), map_fit (the fit that placed it), sentiment, title, published_at, partition_day. Metadata: the map,
    outlet summary, outlet similarity in dendrogram order with flat outlet groups, each outlet's sentiment per
    map cluster.

    The map is fitted on a stratified sample of at most max_fit_articles and kept in a state folder (like the
    search index); a night places its new articles with the fitted models and reads no other day. It is fitted
    again (every stored day read, a month at a time) on the first run, every refit_every_days days, when the
    new days' noise share drifts refit_noise_increase above the fit's, when a stored day was embedded again,
    or with `rebuild: true`."""
    import mlflow

    from opensentiment_pipeline.core import plots
    from opensentiment_pipeline.core.analysis import map_fit

    folder = Path(config.state_dir) if config.state_dir else Path(artifacts.root).parent / "map"
    inputs = {"article_embeddings": article_embeddings, "raw_articles": raw_articles}
    fit = map_fit.load_fit(folder) if (folder / stored_days.LEDGER_FILE).exists() else None
    plan = stored_days.plan_fold(inputs, stored_days.read_ledger(folder) if fit else {},
                                 rebuild_reason=_refit_reason(config, fit, article_embeddings.days()))
    update = None
    if not plan.rebuild:
        update = map_state.fold(fit, article_embeddings, raw_articles, plan.days, folder)
        drift = update.noise_share - fit.noise_share
        if update.mismatch:
            plan = stored_days.plan_fold(inputs, {}, rebuild_reason=update.mismatch)
        elif update.n_new >= map_state.DRIFT_MIN_ARTICLES and drift > config.refit_noise_increase:
            plan = stored_days.plan_fold(inputs, {}, rebuild_reason=(
                f"the new days' noise share {update.noise_share:.2f} is {drift:.2f} above the fit's "
                f"{fit.noise_share:.2f} (refit_noise_increase {config.refit_noise_increase})"))
    if plan.rebuild:
        context.log.info("fitting the map again from %d stored days: %s", len(plan.days), plan.reason)
        update = map_state.refit(article_embeddings, raw_articles, plan.days, previous=fit,
                                 **config.model_dump(include=set(map_state.FIT_FIELDS)))
    else:
        context.log.info("placed %d new articles of %d day(s) with map fit %s", update.n_new, len(plan.days),
                         fit.fit_id)
    with search.replacing_folder(folder) as tmp:
        map_state.save(tmp, update, old_folder=None if plan.rebuild else folder)
        stored_days.write_ledger(tmp, plan.stored)
    points = map_state.read_points(folder)
    tables = map_state.tables(points, update.sums, update.fit, n_outlet_groups=config.n_outlet_groups,
                              min_topic_articles=config.min_topic_articles)
    out_dir = artifacts.run_dir(context, "outlet_clusters")
    tables.outlets.to_csv(out_dir / "outlets.csv", index=False)
    tables.outlet_similarity.to_csv(out_dir / "outlet_similarity.csv")
    tables.topic_outlet_sentiment.to_csv(out_dir / "topic_outlet_sentiment.csv", index=False)
    drawn = points.sample(n=min(len(points), config.max_plot_points), random_state=config.random_state)
    scatter_path = out_dir / f"{config.projection}_scatter.html"
    scatter_path.write_text(plots.scatter_html(drawn, hover_cols=["title", "outlet", "sentiment", "cluster"],
                                               color_by="outlet", color_options=["sentiment", "cluster"]))
    scatter = plots.scatter_png(drawn, color_by="outlet")
    heatmap = plots.similarity_heatmap_png(tables.outlet_similarity, order=tables.outlet_order)
    n_clusters = len(set(points["cluster"].tolist()) - {-1})
    noise_share = float((points["cluster"] == -1).mean())
    with mlflow_tracking.run(context, params=config.model_dump()) as run:
        mlflow.log_artifacts(str(out_dir))
        mlflow.log_metrics({"num_clusters": n_clusters, "noise_share": noise_share})
    keywords = pd.DataFrame([{"cluster": c, "keywords": ", ".join(words)} for c, words in update.fit.keywords.items()])
    groups = tables.outlets.set_index("outlet")["outlet_group"]
    outlet_groups = {str(g): [o for o in tables.outlet_order if groups[o] == g] for g in sorted(set(groups))}
    context.add_output_metadata({
        **mlflow_tracking.run_metadata(run),
        "num_articles": len(points),
        "num_clusters": n_clusters,
        "noise_share": noise_share,
        "projection": config.projection,
        "map_fit": update.fit.fit_id,
        "fit_articles": len(update.fit.sample_ids),
        "refitted": plan.rebuild,
        "refit_reason": plan.reason,
        "days_read": len(plan.days),
        "new_articles": update.n_new,
        "new_noise_share": round(update.noise_share, 4),
        "umap_scatter": dg.MetadataValue.md(plots.png_markdown(
            scatter, f"{config.projection.upper()} map of article embeddings by outlet ({len(drawn)} drawn)")),
        "outlet_similarity": dg.MetadataValue.md(plots.png_markdown(heatmap, "outlet similarity")),
        "outlets": dg.MetadataValue.md(table_preview(tables.outlets.round(3), rows=50)),
        "outlet_groups": dg.MetadataValue.json(outlet_groups),
        "cluster_keywords": dg.MetadataValue.md(table_preview(keywords, rows=50, max_chars=120)),
        "topic_outlet_sentiment": dg.MetadataValue.md(
            table_preview(tables.topic_outlet_sentiment.round(3), rows=50, max_chars=60)),
        "interactive_scatter": dg.MetadataValue.path(str(scatter_path)),
        **update.fit.settings.get("topic_metrics", {}),
    })
    return points


def _refit_reason(config: OutletClustersConfig, fit, stored: list[str]) -> str:
    """Why this run fits the map again rather than placing the new days with the stored fit ("" = it places)."""
    if config.rebuild:
        return "rebuild: true"
    if fit is None:
        return "no stored map fit"
    wanted = config.model_dump(include=set(map_state.FIT_FIELDS))
    if fit.settings.get("config") != wanted:
        return "the map settings changed"
    newest = max(stored) if stored else fit.fitted_through
    age = (dt.date.fromisoformat(newest) - dt.date.fromisoformat(fit.fitted_through)).days
    if age >= config.refit_every_days:
        return f"the fit saw days up to {fit.fitted_through}, {age} days before {newest} (refit_every_days " \
               f"{config.refit_every_days})"
    return ""


def map_topic_metrics(articles: pd.DataFrame, points: pd.DataFrame, vectors, article_embeddings: pd.DataFrame) -> dict:
    """When the sources give source topics: same-source-topic precision@10 of the map's vectors (and of the
    sentiment vectors, for comparison) and the NMI between the map clusters and the source topics."""
    from opensentiment_pipeline.core.vectors import encoding, topic_quality

    if "topic" not in articles.columns or articles["topic"].notna().sum() <= 10:
        return {}
    compared = {"map_vectors": vectors}
    if "sentiment_embedding" in article_embeddings.columns:
        compared["sentiment_vectors"] = encoding.frame_to_matrix(article_embeddings, column="sentiment_embedding")
    clusters = articles[["article_id"]].merge(points[["article_id", "cluster"]], on="article_id", how="left")
    nmi = topic_quality.cluster_topic_nmi(clusters["cluster"].to_numpy(), articles["topic"].tolist())
    return {**topic_quality.topic_report(compared, articles["topic"].tolist()), "cluster_topic_nmi": round(nmi, 4)}
