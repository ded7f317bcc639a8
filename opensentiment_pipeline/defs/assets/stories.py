"""Story assets: articles about the same event across outlets (`stories`), and how outlets agree over the stories
they share (`outlet_agreement`).

`stories` keeps its state in a stable folder (core/analysis/story_state.py): the open stories' centroids and
member articles, every article's story, the story table, per-outlet rating counts and the reference the vectors
and words are compared against. Each night reads and assigns the new day only, so a night costs the new day and
the stories still open; the result equals re-assigning every day (`rebuild: true`), which reads the days in
batches and keeps the stored reference.
"""

from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field, model_validator

from opensentiment_pipeline.defs.metadata import table_preview
from opensentiment_pipeline.defs.partitions import PARTITION_COLUMN, SINGLE_RUN
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking
from opensentiment_pipeline.defs.stored_days import StoredDays

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
    reference_articles: int = Field(default=20_000, ge=1, description="articles of the first build (oldest days "
                                    "first) whose mean topic vector is the center and whose word counts keywords are "
                                    "weighed against; kept by later nights and rebuilds with the same encoder")
    n_bootstrap: int = Field(default=1000, description="resamples for each outlet's sentiment interval in a story")
    top_k_words: int = Field(default=8, description="keywords per story and distinctive words per outlet")
    prior_strength: float = Field(default=500.0, description="a0 of the informative Dirichlet prior (Monroe et "
                                  "al. 2008): pseudo-words spread as in the reference articles")
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
def stories(context: dg.AssetExecutionContext, config: StoriesConfig, raw_articles: StoredDays,
            article_embeddings: StoredDays, outlet_leaning: pd.DataFrame, artifacts: ArtifactStore,
            mlflow_tracking: MlflowTracking) -> pd.DataFrame:
    """One row per (story, outlet that covered it): headline, keywords, days, size, coverage by leaning, blindspot,
    and the outlet's sentiment with a 95 % interval and its distinctive words. Undated articles are left out.

    A night reads the new days of raw_articles and article_embeddings only: the state folder keeps what the
    touched stories need from earlier days. A changed or removed day, a day older than the newest one folded in,
    other settings, another encoder (model_version or text_window, with a warning) or `rebuild: true` re-assign
    every article, reading the days a month at a time."""
    import mlflow

    from opensentiment_pipeline.core import plots
    from opensentiment_pipeline.core.analysis import story_state
    from opensentiment_pipeline.core.vectors import search
    from opensentiment_pipeline.defs.stored_days import plan_fold, read_ledger, write_ledger

    folder = Path(config.state_dir) if config.state_dir else Path(artifacts.root).parent / "stories"
    stored = story_state.load(folder)
    settings = story_settings(config)
    ledger = read_ledger(folder) if stored is not None else {}
    inputs = {"article_embeddings": article_embeddings, "raw_articles": raw_articles}
    plan = plan_fold(inputs, ledger, rebuild_reason=rebuild_reason(config, stored, settings, article_embeddings, ledger))
    result, plan, counts, touched = fold_stored_days(context, config, plan, stored, inputs, ledger, settings,
                                            axis=outlet_leaning.set_index("outlet")["label"]
                                            if "label" in outlet_leaning else None)
    with search.replacing_folder(folder) as tmp:
        story_state.save(tmp, result)
        write_ledger(tmp, plan.stored)
    table, assignments = result.table, result.assignments
    metadata, pngs = story_metadata(table, assignments, undated=result.undated, new_articles=counts.pop("new_articles"),
                                    open_stories=len(result.state.stories), leaning_source=result.leaning_source)
    metadata.update({**counts, "rebuilt": plan.rebuild, "rebuild_reason": plan.reason,
                     "model_version": str(result.encoder.get("model_version")),
                     "open_story_articles": len(result.members)})
    out_dir = artifacts.run_dir(context, "stories")
    # the stories this run changed (every story on a rebuild); the whole table is the asset's Parquet file
    table[table["story_id"].isin(touched)].to_csv(out_dir / "stories_updated.csv", index=False)
    with mlflow_tracking.run(context, params=config.model_dump()) as run:
        mlflow.log_metrics({k: float(v) for k, v in metadata.items() if isinstance(v, (int, float))})
        mlflow.log_artifacts(str(out_dir))
    context.add_output_metadata({
        **mlflow_tracking.run_metadata(run), **metadata, "state_dir": dg.MetadataValue.path(str(folder)),
        **{name: dg.MetadataValue.md(plots.png_markdown(png, name.replace("_", " "))) for name, png in pngs.items()},
    })
    return table


def fold_stored_days(context: dg.AssetExecutionContext, config: StoriesConfig, plan, stored, inputs: dict,
                     ledger: dict, settings: dict, *, axis: pd.Series | None):
    """(story folder, the plan it followed, counts for the metadata, the ids of the stories it changed): the new
    days folded into `stored`, or every stored day re-assigned a month at a time when the plan (or a new day's
    encoder) says to rebuild."""
    import numpy as np

    from opensentiment_pipeline.core.analysis import story_state
    from opensentiment_pipeline.defs.stored_days import plan_fold

    raw_articles, article_embeddings = inputs["raw_articles"], inputs["article_embeddings"]
    embedded_days = set(article_embeddings.days())  # a raw day not embedded yet has nothing to assign
    fold = {"axis_labels": axis, **{k: v for k, v in settings.items() if k not in REFERENCE_SETTINGS}}
    result, days_read, new_articles, new_reference, touched = None, 0, 0, stored is None, set()
    if not plan.rebuild:
        days = [day for day in plan.days if day in embedded_days]
        articles, vectors, encoder = read_story_days(raw_articles, article_embeddings, days)
        days_read = len(days)
        if encoder is not None and encoder != stored.encoder:
            context.log.warning("stories: the new days' vectors come from %s, the stored stories' from %s: "
                                "re-assigning every article", encoder, stored.encoder)
            plan = plan_fold(inputs, ledger, rebuild_reason="another encoder")
            stored = replace_encoder(stored)
        else:
            result, update = story_state.fold_articles(stored, articles, vectors, **fold)
            new_articles, touched = len(update.assignments), set(update.assignments["story_id"])
    if plan.rebuild:
        every = [day for day in plan.days if day in embedded_days]
        context.log.info("stories: re-assigning every stored day (%d): %s", len(every), plan.reason)
        for start in range(0, len(every), DAYS_PER_BATCH):
            days = every[start:start + DAYS_PER_BATCH]
            articles, vectors, encoder = read_story_days(raw_articles, article_embeddings, days)
            days_read += len(days)
            if encoder is None:  # no embedded article on these days
                continue
            if result is None:
                result = start_folder(stored, articles, vectors, encoder, config, settings)
                new_reference = result.reference is not getattr(stored, "reference", None)
                if stored is not None and stored.encoder != encoder:
                    context.log.warning("stories: the vectors now come from %s, the stored stories' from %s: "
                                        "a new reference from the first days", encoder, stored.encoder)
            elif encoder != result.encoder:
                raise ValueError(f"stories: article_embeddings days {days[0]}..{days[-1]} hold vectors from {encoder}, "
                                 f"earlier days from {result.encoder}; re-embed every day with one adapter: make reembed")
            result, update = story_state.fold_articles(result, articles, vectors, **fold)
            new_articles += len(update.assignments)
            touched |= set(update.assignments["story_id"])
        if result is None:  # no embedded article on any day yet: an empty state, replaced once vectors come
            result = start_folder(None, story_state.empty_articles(), np.zeros((0, 0), dtype=np.float32), None,
                                  config, settings)
    counts = {"days_read": days_read, "new_articles": new_articles, "new_reference": bool(new_reference),
              "stories_updated": len(touched)}
    return result, plan, counts, touched


REFERENCE_SETTINGS = ("center_vectors", "reference_articles")  # used when the reference is made, not per fold
DAYS_PER_BATCH = 30  # days a rebuild reads at once: a month of vectors and texts in memory, not the archive


def rebuild_reason(config: StoriesConfig, stored, settings: dict, article_embeddings: StoredDays,
                   ledger: dict) -> str:
    """Why this run re-assigns every article ("" when it folds in the new days): the assignment depends on the
    order of the days, so a new day older than a folded one rebuilds too."""
    from opensentiment_pipeline.defs.stored_days import changes

    if config.rebuild:
        return "rebuild: true"
    if stored is None:
        return "no state yet"
    if stored.settings != settings:
        return "other settings than the stored stories'"
    folded = ledger.get("article_embeddings", {})
    new = changes(article_embeddings.fingerprints(), folded).new
    if new and folded and min(new) < max(folded):
        return f"day {min(new)} is older than the newest day folded in ({max(folded)})"
    return ""


def story_settings(config: StoriesConfig) -> dict:
    """The settings the stored stories depend on (all but where the state lives and whether to rebuild)."""
    return config.model_dump(exclude={"rebuild", "state_dir"})


def start_folder(stored, articles: pd.DataFrame, vectors, encoder: dict | None, config: StoriesConfig,
                 settings: dict):
    """The empty folder a rebuild starts from: the stored reference when the encoder and the reference settings
    are the same, else a new one from this first batch of days."""
    from opensentiment_pipeline.core.analysis import story_state

    same = (stored is not None and stored.encoder == encoder
            and all(stored.settings.get(k) == settings[k] for k in REFERENCE_SETTINGS))
    if same:
        return story_state.restart(stored, settings=settings, center_vectors=config.center_vectors)
    return story_state.start(articles, vectors, encoder=encoder, settings=settings,
                             reference_articles=config.reference_articles, center_vectors=config.center_vectors)


def replace_encoder(stored):
    """`stored` marked as made by no encoder, so a rebuild does not keep its reference for another encoder's
    vectors."""
    from dataclasses import replace

    return replace(stored, encoder={"model_version": None, "text_window": None, "was": stored.encoder})


EMBEDDING_COLUMNS = ["article_id", "model_version", "text_window", "embedding", "sentiment", PARTITION_COLUMN]
RAW_COLUMNS = ["article_id", "outlet", "published_at", "title", "text", "leaning"]


def read_story_days(raw_articles: StoredDays, article_embeddings: StoredDays, days: list[str]):
    """(articles in story_state.ARTICLE_COLUMNS, their topic vectors, {model_version, text_window} or None when the
    days hold no vector) of `days`, read from both inputs."""
    import numpy as np

    from opensentiment_pipeline.core.vectors import encoder_versions, encoding

    embedded = article_embeddings.read(days, columns=EMBEDDING_COLUMNS, optional=["text_window"])
    raw = raw_articles.read(days, columns=RAW_COLUMNS, optional=["leaning"])
    articles = story_articles(raw, embedded)
    if embedded.empty:
        return articles, np.zeros((0, 0), dtype=np.float32), None
    version = encoder_versions.check_one_adapter(embedded, asset="stories", day_column=PARTITION_COLUMN)
    windows = embedded["text_window"].dropna().unique()
    return articles, encoding.frame_to_matrix(embedded), {"model_version": version,
                                                          "text_window": str(windows[0]) if len(windows) else None}


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
