"""stories and outlet_agreement through Dagster on hand-built upstream tables: two nights keep their story ids,
equal a rebuild, and report the story counts, undated articles and blindspots in metadata."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from opensentiment_pipeline import definitions
from opensentiment_pipeline.core.analysis import stories as core_stories
from opensentiment_pipeline.defs.assets import stories as story_assets
from opensentiment_pipeline_tests.defs.stubs import stub_asset

# (article_id, outlet, published_at, title, direction of its topic vector, sentiment)
NIGHT_1 = [
    ("vote-l", "left post", "2026-11-24T08:00Z", "Senate passes tax cuts for the rich", 0, "negative"),
    ("vote-r", "right daily", "2026-11-24T09:00Z", "Senate passes tax relief for families", 0, "positive"),
    ("storm-c", "wire", "2026-11-24T10:00Z", "Storm closes the coast road", 1, "neutral"),
    ("undated", "wire", None, "Recipe of the week", 2, "neutral"),
]
NIGHT_2 = [
    ("vote-c", "wire", "2026-11-25T07:00Z", "Senate tax bill heads to the president", 0, "neutral"),
    ("storm-r", "right daily", "2026-11-25T08:00Z", "Coast road reopens after the storm", 1, "neutral"),
    ("fire-r", "right daily", "2026-11-25T09:00Z", "Forest fire near the border", 3, "negative"),
    ("fire-r2", "right weekly", "2026-11-25T11:00Z", "Fire crews hold the line at the border", 3, "negative"),
]
LEANINGS = {"left post": "left", "right daily": "right", "right weekly": "right", "wire": "center"}


def tables(rows) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    vectors = np.eye(8, dtype=np.float32)[[r[4] for r in rows]] + rng.normal(0, 0.05, (len(rows), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    raw = pd.DataFrame({"article_id": [r[0] for r in rows], "outlet": [r[1] for r in rows],
                        "published_at": pd.to_datetime([r[2] for r in rows], utc=True), "title": [r[3] for r in rows],
                        "text": [f"{r[3]}. More on this later." for r in rows], "source": "stub",
                        "leaning": [LEANINGS[r[1]] for r in rows]})
    embedded = pd.DataFrame({"article_id": raw["article_id"], "model_version": "v1", "embedding": list(vectors),
                             "sentiment": [r[5] for r in rows], "sentiment_confidence": 0.9})
    return raw, embedded


def materialize(home, rows, config: dict | None = None):
    raw, embedded = tables(rows)

    # the labels the bias axis would give; unused while the sources rate outlets
    leaning = pd.DataFrame({"outlet": list(LEANINGS), "label": ["right"] * len(LEANINGS)})
    stubs = [stub_asset("raw_articles", raw), stub_asset("article_embeddings", embedded),
             stub_asset("outlet_leaning", leaning)]

    result = dg.materialize(
        [*stubs, story_assets.stories, story_assets.outlet_agreement],
        resources=definitions.resources_for(home, tracking_uri=f"sqlite:///{home}/mlflow.db"),
        run_config={"ops": {"stories": {"config": {"n_bootstrap": 50, **(config or {})}}}},
        instance=dg.DagsterInstance.ephemeral())
    assert result.success
    return result


def metadata(result, asset: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in event.materialization.metadata.items()}


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    home = tmp_path_factory.mktemp("stories")
    first = materialize(home, NIGHT_1)
    first_table = first.output_for_node("stories")
    second = materialize(home, NIGHT_1 + NIGHT_2)  # night 2: the archive plus the new day
    rebuild = materialize(tmp_path_factory.mktemp("rebuild"), NIGHT_1 + NIGHT_2, {"rebuild": True})
    return first, first_table, second, rebuild


def test_story_ids_stay_stable_over_two_nights(nights):
    _, first_table, second, _ = nights
    second_table = second.output_for_node("stories")
    vote, storm = core_stories.story_id_of("vote-l"), core_stories.story_id_of("storm-c")
    assert sorted(first_table["story_id"].unique()) == sorted([vote, storm])
    outlets = second_table.groupby("story_id")["outlet"].apply(sorted).to_dict()
    assert outlets == {vote: ["left post", "right daily", "wire"], storm: ["right daily", "wire"],
                       core_stories.story_id_of("fire-r"): ["right daily", "right weekly"]}
    assert metadata(second, "stories")["new_articles"] == 4  # night 2 assigned the new day only


def test_two_nights_equal_a_rebuild(nights):
    _, _, second, rebuild = nights
    columns = ["story_id", "outlet", "n_articles", "first_day", "last_day", "blindspot"]
    assert second.output_for_node("stories")[columns].equals(rebuild.output_for_node("stories")[columns])


def test_story_metadata_counts_undated_multi_outlet_and_blindspots(nights):
    _, _, second, _ = nights
    meta = metadata(second, "stories")
    assert meta["undated_articles_left_out"] == 1
    assert meta["num_stories"] == 3
    assert meta["multi_outlet_article_share"] == pytest.approx(7 / 7)
    # the fire (right outlets only) and the storm (wire and a right outlet: no left outlet) are blindspots for the left
    assert meta["num_blindspots"] == 2
    assert meta["leaning_source"] == "source ratings"
    table = second.output_for_node("stories").drop_duplicates("story_id").set_index("story_id")
    assert table["blindspot"].to_dict() == {core_stories.story_id_of("vote-l"): "",
                                            core_stories.story_id_of("storm-c"): "left",
                                            core_stories.story_id_of("fire-r"): "left"}
    assert table.loc[core_stories.story_id_of("vote-l"), "share_left"] == pytest.approx(1 / 3)
    assert "story_sizes" in meta and "last_day_coverage" in meta


def test_outlet_agreement_over_shared_stories(nights):
    _, _, second, _ = nights
    agreement = second.output_for_node("outlet_agreement").set_index(["outlet_a", "outlet_b"])
    pair = agreement.loc[("right daily", "wire")]
    assert (pair["shared_stories"], pair["stories_a"], pair["stories_b"]) == (2, 3, 2)
    assert pair["coverage_jaccard"] == pytest.approx(2 / 3)
    assert np.isnan(pair["sentiment_gap"])  # 2 shared stories < min_shared 3
    assert "coverage_overlap" in metadata(second, "outlet_agreement")
