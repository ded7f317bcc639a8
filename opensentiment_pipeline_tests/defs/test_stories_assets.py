"""stories and outlet_agreement through Dagster on hand-built, day-partitioned upstream tables: a first run, then
one new day, then a rebuild in the same home. The new day is the only stored day the second run reads; story ids
stay stable; the second run's table equals the rebuild's; story counts, undated articles and blindspots are in
metadata; re-embedded days with another encoder rebuild with a new reference."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from opensentiment_pipeline import definitions
from opensentiment_pipeline.core.analysis import stories as core_stories
from opensentiment_pipeline.defs import partitions
from opensentiment_pipeline.defs.assets import stories as story_assets
from opensentiment_pipeline.defs.resources import ParquetIOManager
from opensentiment_pipeline_tests.defs.stubs import day_stub_asset, materialization_metadata, stub_asset

# (article_id, outlet, published_at, title, direction of its topic vector, sentiment)
NIGHT_1 = [
    ("vote-l", "left post", "2026-11-24T08:00Z", "Senate passes tax cuts for the rich", 0, "negative"),
    ("vote-r", "right daily", "2026-11-24T09:00Z", "Senate passes tax relief for families", 0, "positive"),
    ("storm-c", "wire", "2026-11-24T10:00Z", "Storm closes the coast road", 1, "neutral"),
    ("undated", "wire", None, "Recipe of the week", 2, "neutral"),  # filed under the first day
]
NIGHT_2 = [
    ("vote-c", "wire", "2026-11-25T07:00Z", "Senate tax bill heads to the president", 0, "neutral"),
    ("storm-r", "right daily", "2026-11-25T08:00Z", "Coast road reopens after the storm", 1, "neutral"),
    ("fire-r", "right daily", "2026-11-25T09:00Z", "Forest fire near the border", 3, "negative"),
    ("fire-r2", "right weekly", "2026-11-25T11:00Z", "Fire crews hold the line at the border", 3, "negative"),
]
LEANINGS = {"left post": "left", "right daily": "right", "right weekly": "right", "wire": "center"}
NEW_DAY = "2026-11-25"


def tables(rows, model_version: str = "v1") -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    vectors = np.eye(8, dtype=np.float32)[[r[4] for r in rows]] + rng.normal(0, 0.05, (len(rows), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    days = [r[2][:10] if r[2] else partitions.FIRST_DAY for r in rows]
    raw = pd.DataFrame({"article_id": [r[0] for r in rows], "outlet": [r[1] for r in rows],
                        "published_at": pd.to_datetime([r[2] for r in rows], utc=True), "title": [r[3] for r in rows],
                        "text": [f"{r[3]}. More on this later." for r in rows], "source": "stub",
                        "leaning": [LEANINGS[r[1]] for r in rows], partitions.PARTITION_COLUMN: days})
    embedded = pd.DataFrame({"article_id": raw["article_id"], "model_version": model_version,
                             "embedding": list(vectors), "sentiment": [r[5] for r in rows],
                             "sentiment_confidence": 0.9, "text_window": "title + up to 8 x 256 tokens",
                             partitions.PARTITION_COLUMN: days})
    return raw, embedded


def materialize(home, rows, *, first: str | None = None, last: str | None = None, config: dict | None = None,
                model_version: str = "v1", selection=None):
    raw, embedded = tables(rows, model_version)
    # the labels the bias axis would give; unused while the sources rate outlets
    leaning = pd.DataFrame({"outlet": list(LEANINGS), "label": ["right"] * len(LEANINGS)})
    resources = definitions.resources_for(home, tracking_uri=f"sqlite:///{home}/mlflow.db")
    resources["parquet_io_manager"] = ParquetIOManager(base_dir=str(home / "assets"), read_log=str(home / "reads.jsonl"))
    result = dg.materialize(
        [day_stub_asset("raw_articles", raw), day_stub_asset("article_embeddings", embedded),
         stub_asset("outlet_leaning", leaning),
         story_assets.stories, story_assets.outlet_agreement],
        resources=resources, selection=selection,
        run_config={"ops": {"stories": {"config": {"n_bootstrap": 50, **(config or {})}}}},
        instance=dg.DagsterInstance.ephemeral(),
        tags=partitions.range_tags(first=first, last=last) if first else None)
    assert result.success
    return result


def stored_table(home) -> pd.DataFrame:
    return pd.read_parquet(home / "assets" / "stories.parquet")


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    home = tmp_path_factory.mktemp("stories")
    first = materialize(home, NIGHT_1, first=partitions.FIRST_DAY, last="2026-11-24")
    first_table = stored_table(home)
    second = materialize(home, NIGHT_1 + NIGHT_2, first=NEW_DAY, last=NEW_DAY)  # night 2: the new day only
    second_table = stored_table(home)
    rebuild = materialize(home, NIGHT_1 + NIGHT_2, config={"rebuild": True},
                          selection=["stories", "outlet_agreement"])
    scratch_home = tmp_path_factory.mktemp("scratch")
    scratch = materialize(scratch_home, NIGHT_1 + NIGHT_2, first=partitions.FIRST_DAY, last=NEW_DAY)
    return home, first, first_table, second, second_table, rebuild, scratch


def test_story_ids_stay_stable_over_two_nights(nights):
    _, _, first_table, second, second_table, *_ = nights
    vote, storm = core_stories.story_id_of("vote-l"), core_stories.story_id_of("storm-c")
    assert sorted(first_table["story_id"].unique()) == sorted([vote, storm])
    outlets = second_table.groupby("story_id")["outlet"].apply(sorted).to_dict()
    assert outlets == {vote: ["left post", "right daily", "wire"], storm: ["right daily", "wire"],
                       core_stories.story_id_of("fire-r"): ["right daily", "right weekly"]}
    assert materialization_metadata(second, "stories")["new_articles"] == 4  # night 2 assigned the new day only


def test_the_new_day_is_the_only_stored_day_the_second_night_reads(nights):
    home, first, _, second, *_ = nights
    reads = [json.loads(line) for line in (home / "reads.jsonl").read_text().splitlines()]
    night = {(r["asset"], r["day"]) for r in reads if r["run_id"] == second.run_id and r["reader"] == "stories"}
    assert night == {("raw_articles", NEW_DAY), ("article_embeddings", NEW_DAY)}
    meta = materialization_metadata(second, "stories")
    assert (meta["rebuilt"], meta["days_read"], meta["new_reference"]) == (False, 1, False)
    assert materialization_metadata(first, "stories")["rebuild_reason"] == "no state yet"


def test_two_nights_equal_a_rebuild(nights):
    home, _, _, _, second_table, rebuild, scratch = nights
    assert materialization_metadata(rebuild, "stories")["rebuild_reason"] == "rebuild: true"
    pd.testing.assert_frame_equal(second_table, stored_table(home), check_exact=True)
    # from scratch in another home (its reference holds both days): the same stories and coverage
    columns = ["story_id", "outlet", "n_articles", "first_day", "last_day", "blindspot", "outlet_leaning"]
    assert second_table[columns].equals(scratch.output_for_node("stories")[columns])


def test_story_metadata_counts_undated_multi_outlet_and_blindspots(nights):
    _, _, _, second, second_table, *_ = nights
    meta = materialization_metadata(second, "stories")
    assert meta["undated_articles_left_out"] == 1
    assert meta["num_stories"] == 3
    assert meta["multi_outlet_article_share"] == pytest.approx(7 / 7)
    # the fire (right outlets only) and the storm (wire and a right outlet: no left outlet) are blindspots for the left
    assert meta["num_blindspots"] == 2
    assert meta["leaning_source"] == "source ratings"
    table = second_table.drop_duplicates("story_id").set_index("story_id")
    assert table["blindspot"].to_dict() == {core_stories.story_id_of("vote-l"): "",
                                            core_stories.story_id_of("storm-c"): "left",
                                            core_stories.story_id_of("fire-r"): "left"}
    assert table.loc[core_stories.story_id_of("vote-l"), "share_left"] == pytest.approx(1 / 3)
    assert "story_sizes" in meta and "last_day_coverage" in meta


def test_outlet_agreement_over_shared_stories(nights):
    _, _, _, second, *_ = nights
    agreement = second.output_for_node("outlet_agreement").set_index(["outlet_a", "outlet_b"])
    pair = agreement.loc[("right daily", "wire")]
    assert (pair["shared_stories"], pair["stories_a"], pair["stories_b"]) == (2, 3, 2)
    assert pair["coverage_jaccard"] == pytest.approx(2 / 3)
    assert np.isnan(pair["sentiment_gap"])  # 2 shared stories < min_shared 3
    assert "coverage_overlap" in materialization_metadata(second, "outlet_agreement")


def test_days_re_embedded_by_another_encoder_rebuild_with_a_new_reference(tmp_path):
    materialize(tmp_path, NIGHT_1, first=partitions.FIRST_DAY, last="2026-11-24")
    again = materialize(tmp_path, NIGHT_1, first=partitions.FIRST_DAY, last="2026-11-24", model_version="v2")
    meta = materialization_metadata(again, "stories")
    assert meta["rebuilt"] and "written again" in meta["rebuild_reason"]
    assert (meta["new_reference"], meta["model_version"]) == (True, "v2")
    with pytest.raises(ValueError, match=r"2 adapter versions .* Re-embed them"):  # a new day, another encoder
        materialize(tmp_path, NIGHT_1 + NIGHT_2, first=NEW_DAY, last=NEW_DAY, model_version="v3")
