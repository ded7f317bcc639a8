import mlflow
import pandas as pd

from opensentiment_pipeline.defs import registry


def test_champion_moves_only_on_a_win_on_the_same_test_data(tmp_path):
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/m.db")
    experiment = client.create_experiment("t", artifact_location=str(tmp_path / "art"))
    runs = [client.create_run(experiment).info.run_id for _ in range(4)]

    def promote(run, f1, fingerprint="same"):
        return registry.register_and_promote(client, model_name="m", adapter_run_id=run, macro_f1=f1,
                                             fingerprint=fingerprint)

    first = promote(runs[0], 0.70)
    assert (first.version, first.champion_version, first.promoted, first.reason) == ("1", "1", True, "no champion yet")
    worse = promote(runs[1], 0.65)
    assert (worse.champion_version, worse.promoted) == ("1", False)
    assert worse.reason == "macro_f1 0.6500 <= champion v1's 0.7000 on the same test data"
    better = promote(runs[2], 0.75)
    assert (better.champion_version, better.promoted) == ("3", True)
    other_data = promote(runs[3], 0.99, fingerprint="other")
    assert (other_data.champion_version, other_data.promoted) == ("3", False)
    assert "not comparable" in other_data.reason
    assert str(client.get_model_version_by_alias("m", "champion").version) == "3"
    assert client.get_model_version("m", "2").tags["promotion_reason"] == worse.reason


def test_fingerprint_ignores_row_order_but_not_labels():
    test = pd.DataFrame({"article_id": ["a", "b"], "label": ["positive", "negative"]})
    assert registry.test_fingerprint(test) == registry.test_fingerprint(test.iloc[::-1])
    assert registry.test_fingerprint(test) != registry.test_fingerprint(test.assign(label="neutral"))
