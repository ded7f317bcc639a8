"""Leaning asset: every outlet on a left-right axis read from the article embeddings, with the words' evidence
blended in (`lexical_weight`)."""

import math

import dagster as dg
import pandas as pd
from pydantic import Field

from opensentiment_pipeline.defs.metadata import table_preview
from opensentiment_pipeline.defs.partitions import PARTITION_COLUMN, SINGLE_RUN
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking

# Columns of article_embeddings that hold a topic-keeping (base encoder) vector, preferred by vector_column
# "auto" over the sentiment adapter's `embedding`, which folds topics and ideology together.
BASE_VECTOR_COLUMNS = ("base_embedding", "topic_embedding")
TFIDF_CHECK = "embedding_axis_beats_tfidf_reference"


class OutletLeaningConfig(dg.Config):
    reference_csv: str | None = Field(default=None, description="CSV with columns outlet,leaning (left / center / "
                                      "right), e.g. AllSides ratings; None = the `leaning` column of raw_articles "
                                      "where a source gives one. No rating at all: principal axes of the outlets")
    vector_column: str = Field(default="auto", description="article_embeddings column read: 'auto' = the first of "
                               f"{list(BASE_VECTOR_COLUMNS)} present, else 'embedding'")
    n_folds: int = Field(default=5, description="outlet-disjoint validation folds (GroupKFold by outlet)")
    regularization: float = Field(default=0.1, description="C of the logistic-regression probe (inverse L2 "
                                  "strength), on standardised vectors when `standardize`")
    outlet_directions: int = Field(default=0, description="directions that tell apart outlets of the same leaning, "
                                   "projected out inside each training fold so the probe cannot learn outlet "
                                   "identity (0 = off)")
    standardize: bool = Field(default=True, description="scale each vector dimension to unit variance inside "
                              "each training fold before the probe (unit vectors spread each dimension by only "
                              "~0.05, so an unscaled probe is regularised far harder than its C says)")
    lexical_weight: float = Field(default=0.5, description="the axis reads w * P(TF-IDF probe) + (1 - w) * "
                                  "P(embedding probe) per article, both fitted on the same outlet-disjoint folds; "
                                  "0 = the embedding probes alone. The embedding probes alone (vectors and "
                                  "topic-free vectors, split by topic_free_share) are reported either way "
                                  "(embedding_outlet_cv_*)")
    tfidf_regularization: float = Field(default=10.0, description="C of the TF-IDF probe (the lexical reference, "
                                        "blended in by lexical_weight); <= 0 skips it, and needs lexical_weight 0")
    topic_free_share: float = Field(default=0.5, description="the embedding probe's part of the axis is (1 - s) x "
                                    "a probe on the vectors + s x a probe on the topic-free vectors (each minus "
                                    "its k-means topic centroid, topic_clusters of them), so the axis reads how "
                                    "outlets write as well as what they cover; 0 = the vectors alone. The topic-free "
                                    "probe alone is reported as topic_free_outlet_cv_*")
    n_axes: int = Field(default=3, description="principal axes reported when there are no ratings")
    topic_clusters: int = Field(default=20, description="k-means topic centroids subtracted from the vectors: "
                                "for the topic-free probe (topic_free_share) and, with no ratings, before the "
                                "principal axes (0 = keep topics; at most one topic per 50 articles)")
    remove_format: bool = Field(default=True, description="no ratings: regress out format features (length, "
                                "quotes, first person, questions, digits) before the principal axes")
    min_articles: int = Field(default=5, description="outlets with fewer articles are placed but neither define the "
                              "principal axes, the calibration or the thresholds, nor count in the outlet metrics")
    n_bootstrap: int = Field(default=1000, description="resamples of each outlet's articles for its 95 % interval")
    min_topic_articles: int = Field(default=3, description="leaning by topic: an outlet counts on a topic from this "
                                    "many articles on it (topics: the sources' `topic` column, else the clusters of "
                                    "the outlet map, outlet_clusters)")
    seed: int = 0


@dg.asset(io_manager_key="parquet_io_manager", group_name="analysis", backfill_policy=SINGLE_RUN,
          check_specs=[dg.AssetCheckSpec(TFIDF_CHECK, asset="outlet_leaning", blocking=False,
                                         description="warns when a TF-IDF probe alone, on the same outlet-disjoint "
                                         "folds, ranks or labels outlets better than the axis (the embedding probe, "
                                         "blended with the words by lexical_weight)")])
def outlet_leaning(context: dg.AssetExecutionContext, config: OutletLeaningConfig, raw_articles: pd.DataFrame,
                   article_embeddings: pd.DataFrame, outlet_clusters: pd.DataFrame, mlflow_tracking: MlflowTracking,
                   artifacts: ArtifactStore):
    """One row per outlet: calibrated score on a -1 (left) .. +1 (right) axis with a 95 % interval, a three-way
    label, its reference rating, and whether the probe was fitted on it. Without ratings the axis is the
    outlets' first principal axis after removing topic and format directions. Reads outlet_clusters to draw the
    axis on the outlet map and, where the sources give no topics, to use the map's topics for the per-topic
    view."""
    import mlflow

    from opensentiment_pipeline.core import plots
    from opensentiment_pipeline.core.analysis import leaning
    from opensentiment_pipeline.core.ingest import boilerplate
    from opensentiment_pipeline.core.vectors import encoder_versions, encoding

    encoder_versions.check_one_adapter(article_embeddings, asset="outlet_leaning", day_column=PARTITION_COLUMN)
    columns = ["article_id", "outlet", "title", "text",
               *[c for c in ("leaning", "topic") if c in raw_articles.columns]]
    articles = article_embeddings[["article_id"]].merge(raw_articles[columns], on="article_id", how="left",
                                                        validate="one_to_one")
    if articles["outlet"].isna().any():
        raise ValueError(f"{int(articles['outlet'].isna().sum())} embedded articles are not in raw_articles; "
                         "re-materialize article_embeddings after raw_articles")
    vector_column = _vector_column(config.vector_column, article_embeddings)
    vectors = encoding.frame_to_matrix(article_embeddings.rename(columns={vector_column: "embedding"})
                                         if vector_column != "embedding" else article_embeddings)
    texts = boilerplate.strip_boilerplate(_title_and_text(articles), articles["outlet"].tolist(),
                                          **leaning.STRIP_DEFAULTS)
    reference = leaning.read_reference_csv(config.reference_csv) if config.reference_csv else None
    if (config.lexical_weight > 0 and config.tfidf_regularization <= 0
            and leaning.article_labels(articles, reference).notna().any()):  # only rated outlets are blended
        raise ValueError(f"lexical_weight {config.lexical_weight} blends in the TF-IDF probe, which "
                         f"tfidf_regularization {config.tfidf_regularization} turns off: set lexical_weight 0 or a "
                         "positive tfidf_regularization")
    settings = config.model_dump(include={"n_folds", "regularization", "n_axes", "min_articles", "n_bootstrap",
                                          "seed", "topic_clusters", "outlet_directions", "standardize",
                                          "lexical_weight", "tfidf_regularization", "topic_free_share"})
    if config.tfidf_regularization <= 0:
        settings["lexical_weight"] = 0.0  # only reached without ratings, where nothing is blended
    result = leaning.place_outlets(articles, vectors, reference=reference, **settings,
                                   texts=texts if config.tfidf_regularization > 0 else None,
                                   covariates=leaning.format_features(texts) if config.remove_format else None)
    metrics = dict(result.metrics)
    if result.method == "probe":
        blend = f"; vectors + {settings['lexical_weight']:g} x words" if settings["lexical_weight"] > 0 else ""
        title = f"Outlet leaning: calibrated probe on reference ratings (-1 left, +1 right){blend}"
    else:
        title = "Outlets on principal axis 1 (no ratings; topics and format removed; sign arbitrary)"
    png = leaning.leaning_png(result.outlets, title=title)
    out_dir = artifacts.run_dir(context, "outlet_leaning")
    result.outlets.to_csv(out_dir / "outlet_leaning.csv", index=False)
    (out_dir / "outlet_leaning.png").write_bytes(png)
    if result.axes is not None:
        result.axes.to_csv(out_dir / "principal_axes.csv", index=False)
    points = map_points(articles, outlet_clusters, result)
    probe = result.method == "probe"
    map_title = ("Outlet map coloured by leaning (calibrated, -1 left .. +1 right)" if probe
                 else "Outlet map coloured by principal axis 1 (sign arbitrary)")
    map_png = plots.leaning_map_png(points, title=map_title, colorbar_label="leaning (-1 left, +1 right)" if probe
                                    else "principal axis 1 (sign arbitrary)")
    # Without ratings there are no labels to colour by: the page opens on the outlets.
    (out_dir / "leaning_map.html").write_text(plots.scatter_html(
        points.assign(leaning=points["leaning_label"]), hover_cols=["title", "outlet", "leaning_score", "leaning"],
        color_by="leaning" if probe else "outlet", color_options=["outlet", "cluster"]))
    by_topic = cells = topic_source = None
    if result.article_scores is not None:
        by_topic, cells, topic_source = topic_tables(articles, result.article_scores, points, config)
        by_topic.to_csv(out_dir / "leaning_by_topic.csv", index=False)
        cells.to_csv(out_dir / "topic_outlet_leaning.csv", index=False)
    with mlflow_tracking.run(context, params=config.model_dump()) as run:
        mlflow.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})
        mlflow.log_artifacts(str(out_dir))
    metadata = {
        **mlflow_tracking.run_metadata(run),
        "method": result.method,
        "vector_column": vector_column,
        "num_outlets": len(result.outlets),
        "num_fitted_outlets": int(result.outlets["fitted_on"].sum()),
        **metrics,
        "leaning_plot": dg.MetadataValue.md(plots.png_markdown(png, title)),
        "leaning_map": dg.MetadataValue.md(plots.png_markdown(map_png, map_title)),
        "interactive_leaning_map": dg.MetadataValue.path(str(out_dir / "leaning_map.html")),
        "outlets": dg.MetadataValue.md(table_preview(result.outlets.sort_values("score").round(3), rows=200)),
    }
    if by_topic is not None:
        metadata["leaning_by_topic"] = dg.MetadataValue.md(
            f"Topics from {topic_source}; scores are raw P(right) - P(left), held out, widest spread first.\n\n"
            + table_preview(by_topic.round(3), rows=20, max_chars=80))
        metadata["topic_outlet_leaning"] = dg.MetadataValue.md(
            f"Each outlet's mean held-out article score per topic ({topic_source}), left first.\n\n"
            + table_preview(cells.round(3), rows=50, max_chars=60))
    if result.axes is not None:
        metadata["principal_axes"] = dg.MetadataValue.md(table_preview(result.axes.round(3), max_chars=200))
        metadata["axis1_ends"] = dg.MetadataValue.json(
            {"low_end": list(result.axes.iloc[0]["low_end"]), "high_end": list(result.axes.iloc[0]["high_end"])})
    yield dg.Output(result.outlets, metadata=metadata)
    if context.selected_asset_check_keys:
        yield tfidf_check_result(metrics)


def tfidf_check_result(metrics: dict[str, float]) -> dg.AssetCheckResult:
    """Passes when the axis (the embedding probe, blended with the words by `lexical_weight`) is at least as good
    as the TF-IDF probe alone on both Spearman and macro-F1; a WARN (not an error) otherwise, so a weak axis is
    flagged without stopping the nightly run. The embedding probe alone is in the metadata too
    (`embedding_only_*`), so what the vectors add stays visible; with lexical_weight 1 the axis *is* the TF-IDF
    probe and the check passes trivially. The topic-free probe's own figures (`topic_free_only_*`) are there
    when `topic_free_share` > 0."""
    pairs = {name: (metrics.get(f"outlet_cv_{name}"), metrics.get(f"tfidf_outlet_cv_{name}"))
             for name in ("spearman", "macro_f1")}
    compared = {n: p for n, p in pairs.items() if p[1] is not None and all(math.isfinite(v) for v in p)}
    losses = sorted(n for n, (axis, tfidf) in compared.items() if axis < tfidf)
    return dg.AssetCheckResult(
        check_name=TFIDF_CHECK, asset_key="outlet_leaning", passed=not losses, severity=dg.AssetCheckSeverity.WARN,
        metadata={"compared": bool(compared), "losses": dg.MetadataValue.json(losses),
                  **{f"{side}_{name}": float(value) for name, pair in compared.items()
                     for side, value in zip(("axis", "tfidf"), pair)},
                  **{f"{view}_only_{name}": float(metrics[f"{view}_outlet_cv_{name}"]) for name in compared
                     for view in ("embedding", "topic_free")
                     if math.isfinite(metrics.get(f"{view}_outlet_cv_{name}", math.nan))}},
        description=None if compared else "no ratings, or the reference was skipped: nothing to compare")


def map_points(articles: pd.DataFrame, outlet_clusters: pd.DataFrame, result) -> pd.DataFrame:
    """The map's points (x, y, cluster of every embedded article) with the article's title, its outlet's
    calibrated score and label (`leaning_score`, `leaning_label`) and its own raw score (`article_score`).

    The map must hold every embedded article: a map drawn before the last embedding would leave articles off
    the picture and out of the per-topic tables, so that fails with the command that redraws it."""
    missing = ~articles["article_id"].isin(outlet_clusters["article_id"])
    if missing.any():
        raise ValueError(f"outlet_clusters has no map position for {int(missing.sum())} of {len(articles)} embedded "
                         f"articles (e.g. {articles.loc[missing, 'article_id'].head(3).tolist()}): it was drawn "
                         "before they were embedded. Redraw it with the axis: dagster asset materialize -m "
                         "opensentiment_pipeline.definitions --select 'outlet_clusters,outlet_leaning' -c <the run "
                         "config you place outlets with, e.g. the one that sets reference_csv>")
    points = articles[["article_id", "outlet", "title"]].merge(
        outlet_clusters[["article_id", "x", "y", "cluster"]], on="article_id", how="left", validate="one_to_one")
    outlets = result.outlets.set_index("outlet")
    points["leaning_score"] = points["outlet"].map(outlets["score"])
    points["leaning_label"] = points["outlet"].map(outlets["label"])  # None on the principal-axes path
    points["article_score"] = result.article_scores if result.article_scores is not None else float("nan")
    return points


def topic_tables(articles: pd.DataFrame, article_scores, points: pd.DataFrame,
                 config: OutletLeaningConfig) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The per-topic view of the axis (`leaning.leaning_by_topic`), the (topic, outlet) cells behind it
    (`leaning.topic_outlet_leaning`) and where the topics came from: the sources' `topic` column when at least
    half the articles have one, else the outlet map's HDBSCAN clusters (noise left out), named by c-TF-IDF keywords
    as in outlet_clusters (with its default top_k), so this table and outlet_clusters' per-topic sentiment share
    their topics."""
    from opensentiment_pipeline.core.analysis import clustering, leaning
    from opensentiment_pipeline.defs.assets.analysis import OutletClustersConfig

    if "topic" in articles.columns and articles["topic"].notna().mean() >= 0.5:
        topics, keywords, source = articles["topic"].tolist(), None, "the sources' topic column"
    else:
        clusters = points["cluster"].to_numpy()
        keywords = clustering.cluster_keywords(articles["text"].fillna("").astype(str).tolist(), clusters,
                                               top_k=OutletClustersConfig().top_k)
        topics = [None if c == clustering.NOISE else int(c) for c in clusters]
        source = f"the outlet map's {len(set(topics) - {None})} clusters"
    outlets = articles["outlet"].to_numpy()
    by_topic = leaning.leaning_by_topic(outlets, article_scores, topics, min_articles=config.min_topic_articles,
                                        keywords=keywords)
    cells = leaning.topic_outlet_leaning(outlets, article_scores, topics, min_articles=config.min_topic_articles,
                                         keywords=keywords)
    return by_topic, cells, source


def _vector_column(choice: str, article_embeddings: pd.DataFrame) -> str:
    if choice == "auto":
        return next((c for c in BASE_VECTOR_COLUMNS if c in article_embeddings.columns), "embedding")
    if choice not in article_embeddings.columns:
        raise ValueError(f"vector_column {choice!r} is not in article_embeddings; columns: "
                         f"{list(article_embeddings.columns)}. Use 'auto' or one of them")
    return choice


def _title_and_text(articles: pd.DataFrame) -> list[str]:
    titles = articles["title"].fillna("").astype(str).str.strip()
    return [f"{t}\n{x}" if t else str(x) for t, x in zip(titles, articles["text"].fillna("").astype(str))]
