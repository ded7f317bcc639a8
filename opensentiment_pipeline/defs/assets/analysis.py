"""Analysis assets: article embeddings from the fine-tuned encoder, and the outlet map built on them."""

import dagster as dg
import pandas as pd
from pydantic import Field

from opensentiment_pipeline.defs.assets.model import adapter_version
from opensentiment_pipeline.defs.metadata import table_preview
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking


class ArticleEmbeddingsConfig(dg.Config):
    sources: list[str] = Field(default_factory=list, description="embed only rows of these sources (empty = all)")
    include_title: bool = Field(default=True, description="prepend the title to the text")
    max_length: int = Field(default=256, description="tokens per article; longer bodies are truncated")
    batch_size: int = 64
    device: str = Field(default="auto", description="auto (CUDA when present) | cpu | cuda")


def article_texts(articles: pd.DataFrame, include_title: bool) -> list[str]:
    if not include_title:
        return articles["text"].tolist()
    return [f"{t}. {x}" if isinstance(t, str) and t.strip() else x for t, x in zip(articles["title"], articles["text"])]


@dg.asset(io_manager_key="parquet_io_manager", group_name="analysis")
def article_embeddings(context: dg.AssetExecutionContext, config: ArticleEmbeddingsConfig,
                       raw_articles: pd.DataFrame, sentiment_adapter: str) -> pd.DataFrame:
    """One L2-normalised vector per article from the fine-tuned encoder, with its predicted sentiment and the
    adapter version (MLflow run id) that made it."""
    from opensentiment_pipeline.core import embeddings, modeling, training

    articles = raw_articles
    if config.sources:
        unknown = set(config.sources) - set(raw_articles["source"])
        if unknown:
            raise ValueError(f"sources {sorted(unknown)} are not in raw_articles; present: "
                             f"{sorted(raw_articles['source'].unique())}")
        articles = raw_articles[raw_articles["source"].isin(config.sources)]
    articles = articles.reset_index(drop=True)
    device = embeddings.resolve_device(config.device)
    manifest, tokenizer, model = modeling.load_adapter(sentiment_adapter, device=device)
    texts = article_texts(articles, config.include_title)
    vectors = embeddings.encode_texts(modeling.encoder_of(model), tokenizer, texts, batch_size=config.batch_size,
                                      max_length=config.max_length, device=device, show_progress=True)
    proba = training.predict_proba(model, tokenizer, articles.assign(text=texts), manifest=manifest,
                                   batch_size=config.batch_size, device=config.device)
    version = adapter_version(sentiment_adapter)
    frame = embeddings.embeddings_frame(articles["article_id"], vectors, model_version=version)
    frame["sentiment"] = [manifest.labels[i] for i in proba.argmax(1)]
    frame["sentiment_confidence"] = proba.max(1)
    context.add_output_metadata({
        "num_rows": len(frame),
        "dimensions": int(vectors.shape[1]),
        "adapter_version": version,
        "predicted_sentiment": dg.MetadataValue.json(frame["sentiment"].value_counts().to_dict()),
    })
    return frame


class OutletClustersConfig(dg.Config):
    n_components: int = Field(default=2, description="UMAP output dimensions (2 for the scatter plot)")
    n_neighbors: int = Field(default=15, description="UMAP neighbourhood size: larger keeps more global structure")
    min_dist: float = 0.1
    metric: str = Field(default="cosine", description="UMAP metric on the embeddings")
    min_cluster_size: int = Field(default=10, description="HDBSCAN: smallest group that counts as a cluster")
    min_samples: int | None = Field(default=None, description="HDBSCAN: higher = more points called noise")
    top_k: int = Field(default=8, description="keywords per cluster (c-TF-IDF)")
    random_state: int = 42


@dg.asset(io_manager_key="parquet_io_manager", group_name="analysis")
def outlet_clusters(context: dg.AssetExecutionContext, config: OutletClustersConfig, raw_articles: pd.DataFrame,
                    article_embeddings: pd.DataFrame, mlflow_tracking: MlflowTracking,
                    artifacts: ArtifactStore) -> pd.DataFrame:
    """UMAP coordinates and an HDBSCAN cluster per article; outlet summary and similarity in metadata."""
    import mlflow

    from opensentiment_pipeline.core import clustering, embeddings, plots

    articles = article_embeddings[["article_id", "sentiment"]].merge(
        raw_articles[["article_id", "outlet", "title", "text"]], on="article_id", how="left", validate="one_to_one")
    result = clustering.cluster_outlets(articles, embeddings.frame_to_matrix(article_embeddings), **config.model_dump())
    points = result.points.merge(articles[["article_id", "title", "sentiment"]], on="article_id")
    out_dir = artifacts.run_dir(context, "outlet_clusters")
    result.outlets.to_csv(out_dir / "outlets.csv", index=False)
    result.outlet_similarity.to_csv(out_dir / "outlet_similarity.csv")
    (out_dir / "umap_scatter.html").write_text(
        plots.scatter_html(points, hover_cols=["title", "outlet", "sentiment", "cluster"], color_by="outlet"))
    scatter = plots.scatter_png(points, color_by="outlet")
    heatmap = plots.similarity_heatmap_png(result.outlet_similarity)
    with mlflow_tracking.run(context, params=config.model_dump()) as run:
        mlflow.log_artifacts(str(out_dir))
        mlflow.log_metrics({"num_clusters": result.n_clusters, "noise_share": result.noise_share})
    keywords = pd.DataFrame([{"cluster": c, "keywords": ", ".join(words)} for c, words in result.cluster_keywords.items()])
    context.add_output_metadata({
        **mlflow_tracking.run_metadata(run),
        "num_articles": len(points),
        "num_clusters": result.n_clusters,
        "noise_share": result.noise_share,
        "umap_scatter": dg.MetadataValue.md(plots.png_markdown(scatter, "UMAP of article embeddings by outlet")),
        "outlet_similarity": dg.MetadataValue.md(plots.png_markdown(heatmap, "outlet similarity")),
        "outlets": dg.MetadataValue.md(table_preview(result.outlets.round(3), rows=50)),
        "cluster_keywords": dg.MetadataValue.md(table_preview(keywords, rows=50, max_chars=120)),
        "interactive_scatter": dg.MetadataValue.path(str(out_dir / "umap_scatter.html")),
    })
    return points
