"""Analysis assets: the outlet map (UMAP, HDBSCAN, keywords, outlet similarity) built on the topic vectors."""


import dagster as dg
import pandas as pd
from pydantic import Field

from opensentiment_pipeline.defs.metadata import table_preview
from opensentiment_pipeline.defs.partitions import PARTITION_COLUMN, SINGLE_RUN
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking


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


@dg.asset(io_manager_key="parquet_io_manager", group_name="analysis", backfill_policy=SINGLE_RUN)
def outlet_clusters(context: dg.AssetExecutionContext, config: OutletClustersConfig, raw_articles: pd.DataFrame,
                    article_embeddings: pd.DataFrame, mlflow_tracking: MlflowTracking,
                    artifacts: ArtifactStore) -> pd.DataFrame:
    """2-D map coordinates (UMAP or t-SNE) and an HDBSCAN cluster per article; outlet summary, outlet similarity
    in dendrogram order with flat outlet groups, and a per-map-cluster table of each outlet's sentiment in metadata."""
    import mlflow

    from opensentiment_pipeline.core import plots
    from opensentiment_pipeline.core.analysis import clustering
    from opensentiment_pipeline.core.vectors import encoder_versions, encoding

    encoder_versions.check_one_adapter(article_embeddings, asset="outlet_clusters", day_column=PARTITION_COLUMN)
    columns = ["article_id", "outlet", "title", "text", *(["topic"] if "topic" in raw_articles.columns else [])]
    articles = article_embeddings[["article_id", "sentiment"]].merge(
        raw_articles[columns], on="article_id", how="left", validate="one_to_one")
    vectors = encoding.frame_to_matrix(article_embeddings)  # the topic vectors (frozen base encoder)
    result = clustering.cluster_outlets(articles, vectors, **config.model_dump())
    points = result.points.merge(articles[["article_id", "title", "sentiment"]], on="article_id")
    out_dir = artifacts.run_dir(context, "outlet_clusters")
    result.outlets.to_csv(out_dir / "outlets.csv", index=False)
    result.outlet_similarity.to_csv(out_dir / "outlet_similarity.csv")
    result.topic_outlet_sentiment.to_csv(out_dir / "topic_outlet_sentiment.csv", index=False)
    scatter_path = out_dir / f"{config.projection}_scatter.html"
    scatter_path.write_text(plots.scatter_html(points, hover_cols=["title", "outlet", "sentiment", "cluster"],
                                               color_by="outlet", color_options=["sentiment", "cluster"]))
    scatter = plots.scatter_png(points, color_by="outlet")
    heatmap = plots.similarity_heatmap_png(result.outlet_similarity, order=result.outlet_order)
    with mlflow_tracking.run(context, params=config.model_dump()) as run:
        mlflow.log_artifacts(str(out_dir))
        mlflow.log_metrics({"num_clusters": result.n_clusters, "noise_share": result.noise_share})
    keywords = pd.DataFrame([{"cluster": c, "keywords": ", ".join(words)} for c, words in result.cluster_keywords.items()])
    groups = result.outlets.set_index("outlet")["outlet_group"]
    outlet_groups = {str(g): [o for o in result.outlet_order if groups[o] == g] for g in sorted(set(groups))}
    context.add_output_metadata({
        **mlflow_tracking.run_metadata(run),
        "num_articles": len(points),
        "num_clusters": result.n_clusters,
        "noise_share": result.noise_share,
        "projection": config.projection,
        "umap_scatter": dg.MetadataValue.md(plots.png_markdown(
            scatter, f"{config.projection.upper()} map of article embeddings by outlet")),
        "outlet_similarity": dg.MetadataValue.md(plots.png_markdown(heatmap, "outlet similarity")),
        "outlets": dg.MetadataValue.md(table_preview(result.outlets.round(3), rows=50)),
        "outlet_groups": dg.MetadataValue.json(outlet_groups),
        "cluster_keywords": dg.MetadataValue.md(table_preview(keywords, rows=50, max_chars=120)),
        "topic_outlet_sentiment": dg.MetadataValue.md(
            table_preview(result.topic_outlet_sentiment.round(3), rows=50, max_chars=60)),
        "interactive_scatter": dg.MetadataValue.path(str(scatter_path)),
        **map_topic_metrics(articles, result.points, vectors, article_embeddings),
    })
    return points


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
