"""Leaning asset: every outlet on a left-right axis read from the article embeddings, with the words' evidence
blended in (`lexical_weight`). A night scores its new day with the kept fit and adds its sums (`state_dir`)."""

import math
from pathlib import Path

import dagster as dg
from pydantic import Field, model_validator

from opensentiment_pipeline.defs.metadata import table_preview
from opensentiment_pipeline.defs.partitions import SINGLE_RUN
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking
from opensentiment_pipeline.defs.stored_days import StoredDays

TFIDF_CHECK = "embedding_axis_beats_tfidf_reference"
# The OutletLeaningConfig fields that core.analysis.leaning.fit_axis reads: a change refits the axis.
FIT_FIELDS = ("n_folds", "regularization", "n_axes", "min_articles", "seed", "topic_clusters", "outlet_directions",
              "standardize", "lexical_weight", "tfidf_regularization", "topic_free_share", "remove_format",
              "strip_min_share", "strip_min_count")


class OutletLeaningConfig(dg.Config):
    """The only defaults of the bias axis: core.analysis.leaning takes every one of them as a required argument.

    The probe settings (standardize, C 0.1, lexical_weight 0.5, topic_free_share 0.5, 20 topics) are the ones
    measured best outlet-disjoint on the Article-Bias-Prediction sample (benchmarks/RESULTS.md, "Bias axis").
    """

    reference_csv: str | None = Field(default=None, description="CSV with columns outlet,leaning (left / center / "
                                      "right), e.g. AllSides ratings; None = the `leaning` column of raw_articles "
                                      "where a source gives one. No rating at all: principal axes of the outlets")
    n_folds: int = Field(default=5, description="outlet-disjoint validation folds (GroupKFold by outlet)")
    regularization: float = Field(default=0.1, description="C of the logistic-regression probe (inverse L2 "
                                  "strength), on standardised vectors when `standardize`")
    outlet_directions: int = Field(default=0, description="directions that tell apart outlets of the same leaning, "
                                   "projected out inside each training fold so the probe cannot learn outlet "
                                   "identity (0 = off)")
    standardize: bool = Field(default=True, description="scale each vector dimension to unit variance inside "
                              "each training fold before the probe (unit vectors spread each dimension by only "
                              "~0.05, so an unscaled probe is regularised far harder than its C says)")
    lexical_weight: float = Field(default=0.5, ge=0.0, le=1.0, description="the axis reads w * P(TF-IDF probe) + "
                                  "(1 - w) * P(embedding probe) per article, both fitted on the same "
                                  "outlet-disjoint folds; 0 = the embedding probes alone (reported either way as "
                                  "embedding_outlet_cv_*)")
    tfidf_regularization: float = Field(default=10.0, description="C of the TF-IDF probe (the lexical reference, "
                                        "blended in by lexical_weight); <= 0 skips it, and needs lexical_weight 0")
    topic_free_share: float = Field(default=0.5, ge=0.0, le=1.0, description="the embedding probe's part of the "
                                    "axis is (1 - s) x a probe on the vectors + s x a probe on the topic-free "
                                    "vectors (each minus its nearest k-means topic centroid, topic_clusters of them, "
                                    "the k-means fitted inside each training fold); 0 = the vectors alone. The "
                                    "topic-free probe alone is reported as topic_free_outlet_cv_*")
    n_axes: int = Field(default=3, description="principal axes reported when there are no ratings")
    topic_clusters: int = Field(default=20, ge=0, description="k-means topic centroids subtracted from the "
                                "vectors: for the topic-free probe (topic_free_share) and, with no ratings, before "
                                "the principal axes (0 = keep topics; at most one topic per 50 articles)")
    remove_format: bool = Field(default=True, description="no ratings: regress out format features (length, "
                                "quotes, first person, questions, digits) before the principal axes")
    strip_min_share: float = Field(default=0.1, gt=0.0, le=1.0, description="boilerplate stripped from the text "
                                   "the TF-IDF probe reads: a paragraph recurring in at least this share of one "
                                   "outlet's articles (and strip_min_count of them) is that outlet's boilerplate")
    strip_min_count: int = Field(default=3, ge=1, description="see strip_min_share")
    min_articles: int = Field(default=5, description="outlets with fewer articles are placed but neither define the "
                              "principal axes, the calibration or the thresholds, nor count in the outlet metrics")
    n_bootstrap: int = Field(default=1000, description="draws of the calibrated 95 % interval (each refits the "
                             "calibration on resampled rated outlets; the outlet's mean is drawn from its t "
                             "interval, kept as sums, not resampled from its articles)")
    min_topic_articles: int = Field(default=3, description="leaning by topic: an outlet counts on a topic from this "
                                    "many articles on it (topics: the sources' `topic` column, else topic_clusters "
                                    "k-means topics of the vectors, fitted with the axis)")
    seed: int = 0
    state_dir: str | None = Field(default=None, description="folder of the kept fit and per-day sums; None = "
                                  "<home>/leaning beside the artifact store")
    max_fit_articles: int = Field(default=50_000, ge=1, description="the probe is fitted on at most this many "
                                  "articles, stratified by outlet (equal quota each; below it every article)")
    refit_every_days: int = Field(default=7, ge=1, description="refit once the newest stored day is this many days "
                                  "past the newest day the fit saw; between refits a night scores its new day "
                                  "with the kept fit")
    rebuild: bool = Field(default=False, description="recompute the sums from every stored day (with the kept fit "
                          "unless a refit is due)")
    refit: bool = Field(default=False, description="refit the axis now, then rebuild the sums")
    days_per_batch: int = Field(default=30, ge=1, description="days read at a time on a pass over every day")

    @model_validator(mode="after")
    def _blend_needs_the_tfidf_probe(self):
        if self.lexical_weight > 0 and self.tfidf_regularization <= 0:
            raise ValueError(f"lexical_weight {self.lexical_weight} blends in the TF-IDF probe, which "
                             f"tfidf_regularization {self.tfidf_regularization} turns off: set lexical_weight 0 or "
                             "a positive tfidf_regularization")
        return self

    def fit_settings(self) -> dict:
        """The keyword arguments of `fit_axis` this config sets (the ratings are read from reference_csv)."""
        from opensentiment_pipeline.core.analysis import leaning
        from opensentiment_pipeline.defs.assets.analysis import OutletClustersConfig

        return {**self.model_dump(include=set(FIT_FIELDS)), "keyword_top_k": OutletClustersConfig().top_k,
                "reference": leaning.read_reference_csv(self.reference_csv) if self.reference_csv else None}


@dg.asset(io_manager_key="parquet_io_manager", group_name="analysis", backfill_policy=SINGLE_RUN,
          check_specs=[dg.AssetCheckSpec(TFIDF_CHECK, asset="outlet_leaning", blocking=False,
                                         description="warns when a TF-IDF probe alone, on the same outlet-disjoint "
                                         "folds, ranks or labels outlets better than the axis (the embedding probe, "
                                         "blended with the words by lexical_weight)")])
def outlet_leaning(context: dg.AssetExecutionContext, config: OutletLeaningConfig, raw_articles: StoredDays,
                   article_embeddings: StoredDays, mlflow_tracking: MlflowTracking, artifacts: ArtifactStore):
    """One row per outlet: calibrated score on a -1 (left) .. +1 (right) axis with a 95 % interval, a three-way
    label, its reference rating, and whether the probe was fitted on it. Without ratings the axis is the
    outlets' first principal axis after removing topic and format directions. The axis is fitted on a sample of
    at most max_fit_articles (stratified by outlet) every refit_every_days; a night scores only the new day and
    adds its sums, giving the table a pass over every day would give with the same fit."""
    import mlflow

    from opensentiment_pipeline.core.analysis.leaning import state

    state_dir = Path(config.state_dir) if config.state_dir else Path(artifacts.root).parent / "leaning"
    update = state.update_axis(state_dir, raw_articles, article_embeddings, fit_settings=config.fit_settings(),
                               max_fit_articles=config.max_fit_articles, refit_every_days=config.refit_every_days,
                               rebuild=config.rebuild, refit=config.refit, days_per_batch=config.days_per_batch,
                               n_bootstrap=config.n_bootstrap, min_topic_articles=config.min_topic_articles)
    for warning in update.result.warnings:
        context.log.warning(warning)
    context.log.info(f"outlet_leaning: {update.mode} ({update.reason}); fit {update.fit['fit_id']}; "
                     f"read {len(update.days_read)} stored days")
    out_dir = artifacts.run_dir(context, "outlet_leaning")
    figures = _write_artifacts(update, out_dir, lexical_weight=config.lexical_weight)
    metrics = dict(update.result.metrics)
    with mlflow_tracking.run(context, params=config.model_dump()) as run:
        mlflow.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})
        mlflow.log_artifacts(str(out_dir))
    yield dg.Output(update.result.outlets, metadata={**mlflow_tracking.run_metadata(run), **metrics,
                                                     **_metadata(update, figures, out_dir)})
    if context.selected_asset_check_keys:
        yield tfidf_check_result(metrics)


def _write_artifacts(update, out_dir, *, lexical_weight: float) -> dict[str, tuple[bytes, str]]:
    """The CSVs and the axis plot in `out_dir`; returns {name: (png, title)}. (The outlet map coloured by
    leaning is the dashboard's: drawing every article's point each night would cost the archive.)"""
    from opensentiment_pipeline.core import plots

    result = update.result
    if result.method == "probe":
        blend = f"; vectors + {lexical_weight:g} x words" if lexical_weight > 0 else ""
        title = f"Outlet leaning: calibrated probe on reference ratings (-1 left, +1 right){blend}"
    else:
        title = "Outlets on principal axis 1 (no ratings; topics and format removed; sign arbitrary)"
    png = plots.leaning_png(result.outlets, title=title)
    result.outlets.to_csv(out_dir / "outlet_leaning.csv", index=False)
    (out_dir / "outlet_leaning.png").write_bytes(png)
    if result.axes is not None:
        result.axes.to_csv(out_dir / "principal_axes.csv", index=False)
    if update.by_topic is not None:
        update.by_topic.to_csv(out_dir / "leaning_by_topic.csv", index=False)
        update.cells.to_csv(out_dir / "topic_outlet_leaning.csv", index=False)
    return {"leaning_plot": (png, title)}


def _metadata(update, figures: dict[str, tuple[bytes, str]], out_dir) -> dict:
    from opensentiment_pipeline.core import plots

    result, report = update.result, update
    metadata = {
        "method": result.method,
        # Which fit scored every row; the outlet_cv_* metrics were read on its sample when it was fitted.
        "fit_id": update.fit["fit_id"],
        "fit": dg.MetadataValue.json({k: update.fit[k] for k in ("fit_id", "fitted_through", "fitted_at",
                                                                  "n_fit_articles", "n_stored_articles",
                                                                  "model_version")}),
        "update": update.mode,
        "update_reason": update.reason,
        "days_read": len(update.days_read),
        "num_outlets": len(result.outlets),
        "num_fitted_outlets": int(result.outlets["fitted_on"].sum()),
        # What the axis had to substitute, and why (also in the run's log).
        "warnings": dg.MetadataValue.json(list(result.warnings)),
        **{name: dg.MetadataValue.md(plots.png_markdown(png, title)) for name, (png, title) in figures.items()},
        "outlets": dg.MetadataValue.md(table_preview(result.outlets.sort_values("score").round(3), rows=200)),
    }
    if report.by_topic is not None:
        metadata["leaning_by_topic"] = dg.MetadataValue.md(
            f"Topics from {report.topic_source}; scores are raw P(right) - P(left), held out, widest spread "
            "first.\n\n" + table_preview(report.by_topic.round(3), rows=20, max_chars=80))
        metadata["topic_outlet_leaning"] = dg.MetadataValue.md(
            f"Each outlet's mean held-out article score per topic ({report.topic_source}), left first.\n\n"
            + table_preview(report.cells.round(3), rows=50, max_chars=60))
    if result.axes is not None:
        metadata["principal_axes"] = dg.MetadataValue.md(table_preview(result.axes.round(3), max_chars=200))
        metadata["axis1_ends"] = dg.MetadataValue.json(
            {"low_end": list(result.axes.iloc[0]["low_end"]), "high_end": list(result.axes.iloc[0]["high_end"])})
    return metadata


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
