"""An objective left-right axis for outlets, read from article embeddings (and, blended in, their words).

Two paths, chosen by whether any reference ratings (left / center / right per outlet, e.g. AllSides) exist:

- **probe** (`placement`, `probes`): a logistic-regression probe on article vectors predicts the leaning; an
  article's raw score is P(right) - P(left) and an outlet's raw score is the mean over its articles. The probe is
  validated *outlet-disjoint* (GroupKFold by outlet), and every score is out-of-sample for its outlet: rated
  outlets are scored by the fold that held them out, unrated ones by the probe fitted on all rated outlets. Raw
  outlet scores crowd near 0, so they are **calibrated** (`calibration`): an ordinal logistic model of the
  rating given the raw score gives each outlet its expected rating in (-1, 1), strictly increasing, with no flat
  end; its interval refits the calibration on resampled outlets as well as resampling the outlet's articles.
  Three-way labels cut the calibrated scale at two thresholds that maximise outlet-level macro-F1, both
  cross-validated.
- **principal axes** (`principal`): without references, PCA on the outlet centroids after removing what carries
  topic and format (`directions`: k-means topic centroids, a linear fit on `texts.format_features`). The first
  axis, scaled to [-1, 1], is the score. Its sign is arbitrary; which outlets sit at each end says what it
  separates.

Given the articles' texts (`texts.axis_texts`: boilerplate stripped), the probe path also fits a TF-IDF +
logistic-regression probe on the same folds: the lexical bar the embedding probe is measured against
(`tfidf_outlet_cv_*`), and, with `lexical_weight` w > 0, part of the axis. With `topic_free_share` s > 0 the
vectors' part is itself (1 - s) x the probe on the vectors + s x a probe on the *topic-free* vectors (minus the
nearest centroid of a k-means fitted inside each training fold), which places outlets by how they write rather
than by what they cover. `topics` lays the axis over topics. Nothing here knows any outlet by name.

The asset's one call is `update_axis` (`state`): the axis is fitted once on a bounded sample stratified by
outlet (`fit`: every model that scores one article, kept), each day's scored articles are reduced to sums
(`stats.day_stats`), and the outlet and topic tables are a function of those sums (`stats.leaning_tables`),
so a night scores its new day alone. There, intervals are t intervals of an outlet's mean, not a bootstrap
over its articles (`place_outlets`, the benchmarks' call, keeps the bootstrap).

Every setting that changes a result is a required keyword argument; the `outlet_leaning` asset's config holds
the defaults.
"""

from opensentiment_pipeline.core.analysis.leaning.calibration import (
    Calibration,
    apply_calibration,
    calibrate_in_cv,
    calibrated_intervals,
    choose_thresholds,
    fit_calibration,
)
from opensentiment_pipeline.core.analysis.leaning.directions import (
    ARTICLES_PER_TOPIC,
    outlet_identity_directions,
    project_out,
    remove_directions,
    topic_kmeans_size,
)
from opensentiment_pipeline.core.analysis.leaning.fit import (
    AxisFit,
    fit_axis,
    fit_sample,
)
from opensentiment_pipeline.core.analysis.leaning.outlets import (
    AXIS_COLUMNS,
    LEANING_COLUMNS,
    LeaningResult,
    outlet_table,
)
from opensentiment_pipeline.core.analysis.leaning.placement import place_outlets
from opensentiment_pipeline.core.analysis.leaning.probes import (
    cv_metrics,
    fit_tfidf_probe,
    predict_proba,
    probe_model,
    rated_folds,
    tfidf_held_out,
    tfidf_reference,
    vector_proba,
)
from opensentiment_pipeline.core.analysis.leaning.references import (
    LEANING_SCORE,
    LEANINGS,
    article_labels,
    read_reference_csv,
)
from opensentiment_pipeline.core.analysis.leaning.report import join_articles
from opensentiment_pipeline.core.analysis.leaning.state import AxisUpdate, update_axis
from opensentiment_pipeline.core.analysis.leaning.stats import day_stats, leaning_tables
from opensentiment_pipeline.core.analysis.leaning.texts import (
    axis_texts,
    format_features,
)
from opensentiment_pipeline.core.analysis.leaning.topics import (
    TOPIC_LEANING_COLUMNS,
    TOPIC_OUTLET_LEANING_COLUMNS,
    leaning_by_topic,
    topic_outlet_leaning,
    topic_tables,
)
from opensentiment_pipeline.core.ingest.articles import (
    normalise_outlet,  # the one outlet normaliser
)

__all__ = [
    "ARTICLES_PER_TOPIC",
    "AXIS_COLUMNS",
    "LEANINGS",
    "LEANING_COLUMNS",
    "LEANING_SCORE",
    "TOPIC_LEANING_COLUMNS",
    "TOPIC_OUTLET_LEANING_COLUMNS",
    "AxisFit",
    "AxisUpdate",
    "Calibration",
    "LeaningResult",
    "apply_calibration",
    "article_labels",
    "axis_texts",
    "calibrate_in_cv",
    "calibrated_intervals",
    "choose_thresholds",
    "cv_metrics",
    "day_stats",
    "fit_axis",
    "fit_calibration",
    "fit_sample",
    "fit_tfidf_probe",
    "format_features",
    "join_articles",
    "leaning_by_topic",
    "leaning_tables",
    "normalise_outlet",
    "outlet_identity_directions",
    "outlet_table",
    "place_outlets",
    "predict_proba",
    "probe_model",
    "project_out",
    "rated_folds",
    "read_reference_csv",
    "remove_directions",
    "tfidf_held_out",
    "tfidf_reference",
    "topic_kmeans_size",
    "topic_outlet_leaning",
    "topic_tables",
    "update_axis",
    "vector_proba",
]
