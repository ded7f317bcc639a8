"""Words that set one group of texts apart from another: log-odds with an informative Dirichlet prior.

Monroe, Colaresi & Quinn (2008), "Fightin' Words", section 3.5.1: for word w, group i and the rest j,

    delta_w = log((y_iw + a_w) / (n_i + a0 - y_iw - a_w)) - log((y_jw + a_w) / (n_j + a0 - y_jw - a_w))
    var_w ~= 1 / (y_iw + a_w) + 1 / (y_jw + a_w),   z_w = delta_w / sqrt(var_w)

with the prior a_w = a0 x the word's share of a background corpus. Unlike raw counts or frequency ratios, rare
words do not dominate (the prior shrinks them) and frequent words are not all that shows (z divides by the
evidence), so the top words by z are the ones a group uses markedly more than the rest.

Stories weigh their words against a fixed `Reference` (the word counts of a sample of the archive, kept with the
story state) rather than against the other stories of a run, so a story's keywords depend on its own articles
only: the same whichever night summarised it, and the same after a rebuild.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TOKEN_PATTERN = r"(?u)\b[^\W\d_][^\W\d_]{2,}\b"  # words of 3+ letters: numbers and 2-letter tokens say little here


def word_counter(texts: Sequence[str]):
    """A fitted scikit-learn CountVectorizer (lower-cased, English stop words out) and the counts of `texts`."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(lowercase=True, stop_words="english", token_pattern=TOKEN_PATTERN)
    counts = vectorizer.fit_transform(list(texts))
    return vectorizer, counts


def log_odds_z(group: np.ndarray, rest: np.ndarray, background: np.ndarray, *, prior_strength: float) -> np.ndarray:
    """Monroe et al.'s z-scores of each word for `group` against `rest` (count vectors over one vocabulary), with
    the informative prior `prior_strength` x the word's share of `background` (counts; every word > 0 there).

    Example: with a background of [10, 10] and group [5, 0] against rest [0, 5], word 0 gets z > 0 and word 1 z < 0.
    """
    group, rest, background = (np.asarray(a, dtype=np.float64) for a in (group, rest, background))
    if not group.shape == rest.shape == background.shape:
        raise ValueError(f"group, rest and background must share one vocabulary; got shapes {group.shape}, "
                         f"{rest.shape}, {background.shape}")
    if prior_strength <= 0 or background.sum() <= 0:
        raise ValueError(f"prior_strength must be > 0 and the background non-empty; got {prior_strength}, "
                         f"{background.sum()} background words")
    alpha = _alpha(background, prior_strength)  # floored: a word absent from the background would divide by zero
    return _z(group, rest, alpha, a0=float(alpha.sum()), n_group=group.sum(), n_rest=rest.sum())


@dataclass(frozen=True)
class Reference:
    """Word counts of a reference corpus: `words` (sorted) and their `counts`; `total` words, `size` distinct."""

    words: np.ndarray
    counts: np.ndarray

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def size(self) -> int:
        return len(self.words)

    def aligned(self, vocabulary: np.ndarray) -> np.ndarray:
        """The reference count of each word of `vocabulary` (0 for words it lacks)."""
        vocabulary = np.asarray(vocabulary, dtype=object).astype(str)
        if not self.size:
            return np.zeros(len(vocabulary), dtype=np.float64)
        at = np.clip(np.searchsorted(self.words, vocabulary), 0, self.size - 1)
        return np.where(self.words[at] == vocabulary, self.counts[at], 0).astype(np.float64)

    def alpha(self, vocabulary: np.ndarray, prior_strength: float) -> np.ndarray:
        """The informative prior's pseudo-counts for `vocabulary`: prior_strength x each word's add-one share of
        the reference, normalised over the reference (not the vocabulary), so a word's prior does not depend on
        which other texts were counted with it."""
        return self.prior(self.aligned(vocabulary), prior_strength)

    def prior(self, aligned: np.ndarray, prior_strength: float) -> np.ndarray:
        """`alpha` from the reference counts `aligned` already gave for a vocabulary."""
        return prior_strength * (np.asarray(aligned, dtype=np.float64) + 1.0) / (self.total + self.size + 1.0)


def reference_counts(texts: Sequence[str]) -> Reference:
    """The `Reference` of `texts` (the words `word_counter` counts); empty when no text has one."""
    try:
        vectorizer, counts = word_counter(texts)
    except ValueError:  # scikit-learn: "empty vocabulary"
        return Reference(words=np.array([], dtype=str), counts=np.array([], dtype=np.int64))
    return Reference(words=np.asarray(vectorizer.get_feature_names_out()).astype(str),
                     counts=np.asarray(counts.sum(axis=0)).ravel().astype(np.int64))


def reference_words(counts, vocabulary: np.ndarray, reference: Reference, *, top_k: int,
                    prior_strength: float) -> list[str]:
    """The `top_k` words of the documents in `counts` (one story; a CSR documents x vocabulary matrix) most
    over-used against the `reference` corpus, by log-odds z; ties in vocabulary (alphabetical) order.

    Only the words the documents use are aligned with the reference: a story's cost is its own words, not the
    vocabulary of every story summarised with it."""
    used = _used_columns(counts)
    group = np.asarray(counts[:, used].sum(axis=0)).ravel()
    rest = reference.aligned(np.asarray(vocabulary)[used])
    z = _z(group, rest, reference.prior(rest, prior_strength), a0=prior_strength, n_group=group.sum(),
           n_rest=float(reference.total))
    order = np.argsort(-z, kind="stable")[:top_k]
    return [str(vocabulary[used[i]]) for i in order]


def group_words(counts, groups: Sequence[str], vocabulary: np.ndarray, alpha: np.ndarray, *, top_k: int,
                prior_strength: float, min_z: float) -> dict[str, list[str]]:
    """For each group of rows of `counts` (a documents x vocabulary count matrix), the `top_k` words it uses most
    markedly more than the other groups pooled (z >= `min_z`), highest z first; `alpha` are the prior's
    pseudo-counts per vocabulary word (`prior_alpha`, `Reference.alpha`). With a single group there is nothing
    to compare and it gets no words."""
    groups = np.asarray([str(g) for g in groups])
    names = sorted(set(groups))
    if len(names) < 2:
        return {name: [] for name in names}
    used = _used_columns(counts)  # only words the documents use can be listed; the rest only set n and a0
    counts, alpha = counts[:, used], np.asarray(alpha)[used]
    total = np.asarray(counts.sum(axis=0)).ravel()
    words: dict[str, list[str]] = {}
    for name in names:
        group = np.asarray(counts[groups == name].sum(axis=0)).ravel()
        z = _z(group, total - group, alpha, a0=prior_strength, n_group=group.sum(), n_rest=total.sum() - group.sum())
        order = np.argsort(-z, kind="stable")[:top_k]
        words[name] = [str(vocabulary[used[i]]) for i in order if z[i] >= min_z and group[i] > 0]
    return words


def _used_columns(counts) -> np.ndarray:
    """The columns (sorted) where a CSR count matrix has a non-zero count."""
    counts = counts.tocsr()
    return np.unique(counts.indices[counts.data != 0])


def prior_alpha(prior: np.ndarray, prior_strength: float) -> np.ndarray:
    """Pseudo-counts of an informative prior from background counts over one vocabulary (add-one smoothed)."""
    return _alpha(np.asarray(prior, dtype=np.float64) + 1.0, prior_strength)


def _alpha(background: np.ndarray, prior_strength: float) -> np.ndarray:
    background = np.asarray(background, dtype=np.float64)
    return np.maximum(prior_strength * background / background.sum(), 1e-9)


def _z(group, rest, alpha, *, a0: float, n_group: float, n_rest: float) -> np.ndarray:
    delta = (np.log((group + alpha) / (n_group + a0 - group - alpha))
             - np.log((rest + alpha) / (n_rest + a0 - rest - alpha)))
    return delta / np.sqrt(1.0 / (group + alpha) + 1.0 / (rest + alpha))


def distinctive_words(texts: Sequence[str], groups: Sequence[str], *, top_k: int, prior_strength: float,
                      min_z: float) -> dict[str, list[str]]:
    """`group_words` on raw texts, with the texts' own pooled counts as the prior."""
    texts = list(texts)
    if len(texts) != len(groups):
        raise ValueError(f"texts and groups differ in length: {len(texts)} vs {len(groups)}")
    try:
        vectorizer, counts = word_counter(texts)
    except ValueError:  # scikit-learn: "empty vocabulary" (only stop words or numbers): no word can stand out
        return {str(name): [] for name in sorted(set(map(str, groups)))}
    prior = np.asarray(counts.sum(axis=0)).ravel()
    return group_words(counts, groups, vectorizer.get_feature_names_out(), prior_alpha(prior, prior_strength),
                       top_k=top_k, prior_strength=prior_strength, min_z=min_z)
