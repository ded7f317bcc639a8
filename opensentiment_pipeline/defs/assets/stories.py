"""Story assets: articles about the same event across outlets (`stories`), and how outlets agree over the stories
they share (`outlet_agreement`).

`stories` keeps its state (the open stories' centroids, every article's story and the story table) in a stable
folder, as `article_index` keeps its index: each night assigns only the articles it has not seen, so a night costs
the new day and the stories still open; `rebuild: true` starts again from nothing.
"""

from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field, model_validator

from opensentiment_pipeline.defs.metadata import table_preview
from opensentiment_pipeline.defs.partitions import PARTITION_COLUMN, SINGLE_RUN
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking

BIGGEST_STORIES = 10  # the last day's stories drawn with their coverage bars


class StoriesConfig(dg.Config):
    threshold: float = Field(default=0.55, description="lowest time-penalised cosine between an article and a "
                             "story's centroid that joins the story (this, the window, the decay and the centring "
                             "were chosen on half of the BASIL events with distractors, benchmarks/story_quality.py)")
    window_days: int = Field(default=4, description="an article joins a story only within this many days of its "
                             "days (BASIL's three reports of one event are 0-4 days apart)")
    decay_per_day: float = Field(default=0.05, description="cosine taken off per day between the article and the "
                                 "story (0 = the window alone)")
    center_vectors: bool = Field(default=True, description="compare topic vectors minus their mean (fixed on the "
                                 "first night or a rebuild), so big stories do not draw in everything (StoryState)")
    rebuild: bool = Field(default=False, description="re-cluster every article instead of adding the new ones "
                          "to the stored stories")
    state_dir: str | None = Field(default=None, description="folder of the story state, replaced on each run; "
                                  "default: <home>/stories beside the artifact store")
    blindspot_share: float = Field(default=0.8, description="a story is a blindspot for one side when the other "
                                   "side's outlets are at least this share of its left and right outlets")
    blindspot_min_outlets: int = Field(default=2, description="rated outlets a story needs before it can be a "
                                       "blindspot")
    n_bootstrap: int = Field(default=1000, description="resamples for each outlet's sentiment interval in a story")
    top_k_words: int = Field(default=8, description="keywords per story and distinctive words per outlet")
    prior_strength: float = Field(default=500.0, description="a0 of the informative Dirichlet prior (Monroe et "
                                  "al. 2008): pseudo-words spread as in every article of the run")
    min_z: float = Field(default=1.96, description="an outlet's word is listed only with log-odds z >= this")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self):
        if not 0.5 < self.blindspot_share <= 1.0:
            raise ValueError(f"blindspot_share must be in (0.5, 1]; got {self.blindspot_share}")
        return self


class OutletAgreementConfig(dg.Config):
    min_shared: int = Field(default=3, description="outlet pairs with fewer shared stories get no sentiment gap")


@dg.asset(io_manager_key="parquet_io_manager", group_name="analysis", backfill_policy=SINGLE_RUN)
def stories(context: dg.AssetExecutionContext, config: StoriesConfig, raw_articles: pd.DataFrame,
            article_embeddings: pd.DataFrame, outlet_leaning: pd.DataFrame, artifacts: ArtifactStore,
            mlflow_tracking: MlflowTracking) -> pd.DataFrame:
    """One row per (story, outlet that covered it): headline, keywords, days, size, coverage by leaning, blindspot,
    and the outlet's sentiment with a 95 % interval and its distinctive words. Undated articles are left out."""
    import mlflow

    from opensentiment_pipeline.core import plots
    from opensentiment_pipeline.core.analysis import stories as core_stories
    from opensentiment_pipeline.core.analysis import story_coverage
    from opensentiment_pipeline.core.vectors import encoder_versions, encoding, search

    encoder_versions.check_one_adapter(article_embeddings, asset="stories", day_column=PARTITION_COLUMN)
    articles = story_articles(raw_articles, article_embeddings)
    vectors = encoding.frame_to_matrix(article_embeddings)  # topic vectors, row i = articles.iloc[i]
    folder = Path(config.state_dir) if config.state_dir else Path(artifacts.root).parent / "stories"
    state, old_assignments, old_table = core_stories.load_state(folder, dim=vectors.shape[1])
    if config.rebuild or old_table is None:  # the first night or a rebuild fixes the center for the nights after
        center = vectors.mean(axis=0) if config.center_vectors and len(vectors) else None
        state, old_assignments, old_table = core_stories.empty_state(vectors.shape[1], center)
    new = ~articles["article_id"].isin(old_assignments["article_id"]).to_numpy()
    update = core_stories.assign_stories(articles[new], vectors[new], state, threshold=config.threshold,
                                         window_days=config.window_days, decay_per_day=config.decay_per_day)
    assignments = pd.concat([old_assignments, update.assignments], ignore_index=True) if len(old_assignments) \
        else update.assignments
    touched = set(update.assignments["story_id"])
    leanings, leaning_source = story_coverage.outlet_leanings(
        articles["outlet"].unique().tolist(), source_ratings=articles.set_index("outlet")["leaning"],
        axis_labels=outlet_leaning.set_index("outlet")["label"] if "label" in outlet_leaning else None)
    members = assignments[assignments["story_id"].isin(touched)][["article_id", "story_id", "day"]].merge(
        articles, on="article_id", how="inner", validate="one_to_one")
    members["leaning"] = members["outlet"].map(leanings)
    rows = articles.reset_index(drop=True).reset_index().set_index("article_id").loc[members["article_id"], "index"]
    fresh = story_coverage.summarise_stories(
        members, vectors[rows.to_numpy()], leaning_source=leaning_source, blindspot_share=config.blindspot_share,
        blindspot_min_outlets=config.blindspot_min_outlets, n_bootstrap=config.n_bootstrap,
        top_k_words=config.top_k_words, prior_strength=config.prior_strength, min_z=config.min_z, seed=config.seed)
    table = fresh if old_table is None else pd.concat(
        [old_table[~old_table["story_id"].isin(touched)], fresh], ignore_index=True)
    table = table.sort_values(["first_day", "story_id", "outlet"], kind="stable").reset_index(drop=True)
    with search.replacing_folder(folder) as tmp:
        core_stories.save_state(tmp, update.state, assignments, table)
    metadata, pngs = story_metadata(table, assignments, undated=update.undated, new_articles=len(update.assignments),
                                    open_stories=len(update.state.stories), leaning_source=leaning_source)
    out_dir = artifacts.run_dir(context, "stories")
    table.to_csv(out_dir / "stories.csv", index=False)
    with mlflow_tracking.run(context, params=config.model_dump()) as run:
        mlflow.log_metrics({k: float(v) for k, v in metadata.items() if isinstance(v, (int, float))})
        mlflow.log_artifacts(str(out_dir))
    context.add_output_metadata({
        **mlflow_tracking.run_metadata(run), **metadata, "state_dir": dg.MetadataValue.path(str(folder)),
        **{name: dg.MetadataValue.md(plots.png_markdown(png, name.replace("_", " "))) for name, png in pngs.items()},
    })
    return table


@dg.asset(io_manager_key="parquet_io_manager", group_name="analysis", backfill_policy=SINGLE_RUN)
def outlet_agreement(context: dg.AssetExecutionContext, config: OutletAgreementConfig, stories: pd.DataFrame,
                     mlflow_tracking: MlflowTracking) -> pd.DataFrame:
    """Per pair of outlets over the stories both covered: story overlap (Jaccard) and how close their sentiment
    is, with the number of shared stories; heatmaps of both in metadata."""
    import mlflow

    from opensentiment_pipeline.core import plots
    from opensentiment_pipeline.core.analysis import story_coverage

    table = story_coverage.outlet_agreement(stories, min_shared=config.min_shared)
    overlap = plots.matrix_heatmap_png(story_coverage.agreement_matrix(table, "coverage_jaccard"),
                                       title="Outlets: overlap of the stories they covered", colorbar_label="Jaccard")
    closeness = plots.matrix_heatmap_png(story_coverage.agreement_matrix(table, "sentiment_closeness"),
                                         title=f"Outlets: sentiment closeness over shared stories (>= "
                                         f"{config.min_shared})", colorbar_label="1 - mean gap / 2")
    with mlflow_tracking.run(context, params=config.model_dump()) as run:
        mlflow.log_metrics({"outlet_pairs": len(table), "pairs_with_sentiment": int(table["sentiment_gap"].notna().sum())})
    context.add_output_metadata({
        **mlflow_tracking.run_metadata(run), "outlet_pairs": len(table),
        "coverage_overlap": dg.MetadataValue.md(plots.png_markdown(overlap, "story overlap")),
        "sentiment_closeness": dg.MetadataValue.md(plots.png_markdown(closeness, "sentiment closeness")),
        "pairs": dg.MetadataValue.md(table_preview(
            table.sort_values("shared_stories", ascending=False).round(3), rows=30)),
    })
    return table


def story_articles(raw_articles: pd.DataFrame, article_embeddings: pd.DataFrame) -> pd.DataFrame:
    """The embedded articles, in article_embeddings' order, with what stories read: outlet, publish date, title,
    text, the sources' leaning rating (None when not given) and a sentiment score (story_coverage.sentiment_scores)."""
    from opensentiment_pipeline.core.analysis import story_coverage

    if "sentiment" not in article_embeddings.columns:
        raise ValueError("article_embeddings has no `sentiment` column; re-materialize it with the sentiment adapter")
    columns = ["article_id", "outlet", "published_at", "title", "text", *(["leaning"] if "leaning" in raw_articles else [])]
    articles = article_embeddings[["article_id", "sentiment"]].merge(raw_articles[columns], on="article_id",
                                                                     how="left", validate="one_to_one")
    if articles["outlet"].isna().any():
        raise ValueError(f"{int(articles['outlet'].isna().sum())} embedded articles are not in raw_articles; "
                         "re-materialize article_embeddings after raw_articles")
    if "leaning" not in articles:
        articles["leaning"] = None
    return articles.assign(sentiment=story_coverage.sentiment_scores(articles["sentiment"]))


def story_metadata(table: pd.DataFrame, assignments: pd.DataFrame, *, undated: int, new_articles: int,
                   open_stories: int, leaning_source: str) -> tuple[dict, dict[str, bytes]]:
    """Counts, per-day figures, the last day's biggest stories and the blindspots, and the PNGs to show them."""
    from opensentiment_pipeline.core import plots

    per_story = table.drop_duplicates("story_id")
    multi = per_story.loc[per_story["n_outlets"] >= 2, "n_articles"].sum()
    per_day = assignments.groupby("day")["story_id"].nunique()
    last_day = assignments["day"].max() if len(assignments) else None
    latest = per_story[per_story["story_id"].isin(assignments.loc[assignments["day"] == last_day, "story_id"])]
    biggest = latest.sort_values(["n_articles", "story_id"], ascending=[False, True]).head(BIGGEST_STORIES)
    blindspots = per_story[per_story["blindspot"] != ""]
    shown = ["story_id", "headline", "n_articles", "outlets", "share_left", "share_center", "share_right", "blindspot"]
    metadata = {
        "num_stories": len(per_story), "num_articles": len(assignments), "new_articles": new_articles,
        "open_stories": open_stories, "undated_articles_left_out": undated,
        "multi_outlet_article_share": float(multi / len(assignments)) if len(assignments) else 0.0,
        "stories_per_day_mean": float(per_day.mean()) if len(per_day) else 0.0,
        "num_blindspots": len(blindspots), "leaning_source": leaning_source,
        "stories_per_day": dg.MetadataValue.json({str(d.date()): int(n) for d, n in per_day.tail(30).items()}),
        "biggest_stories_last_day": dg.MetadataValue.md(table_preview(biggest[shown].round(2), rows=BIGGEST_STORIES)),
        "blindspots": dg.MetadataValue.md(table_preview(blindspots[shown].round(2), rows=20)),
    }
    pngs = {"story_sizes": plots.histogram_png(per_story["n_articles"], title="Story sizes", xlabel="articles",
                                              log_y=True)}
    if len(biggest):
        pngs["last_day_coverage"] = plots.coverage_bars_png(
            biggest, title=f"Biggest stories of {last_day.date()} by leaning ({leaning_source})")
    return metadata, pngs
