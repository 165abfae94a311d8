"""The S answer's second stage: P(S) of a beat from its rhythm (:mod:`arritmias.signal.rhythm`), and its threshold.

Why a second stage and not a fourth output of the network: a premature atrial beat usually has the patient's own
QRS, so the beat window says little; the rhythm says most, and it needs the beats around the beat. A fourth
output trained beside V cost the V answer (DS1 cross-validation, seed 42: VEB F1 0.914 -> 0.825) for SVEB 45 / 35 %,
so the V network stays as it was and S is decided here, among the beats the V network calls neither V nor not a
beat. The model is a small ensemble of regression trees fitted by scikit-learn's histogram gradient boosting on
DS1 (:mod:`arritmias.training.supra`) and stored as plain numbers in ``detector.json``: loading it needs neither
scikit-learn nor pickle, and the same numbers answer in every process.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from arritmias.signal.rhythm import FEATURES, beat_times, irregular_rhythm, rhythm_features


@dataclass(frozen=True)
class Tree:
    """One regression tree as flat arrays over its nodes (m,): ``feature`` (int, -1 at a leaf), ``threshold``
    (go left when the feature is <= it), ``left`` / ``right`` child indices, ``value`` (the leaf's raw score)."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The tree's score (n,) for features ``x`` (n, f): every row walks down one level per step."""
        node = np.zeros(len(x), np.int64)
        rows = np.arange(len(x))
        while True:
            feat = self.feature[node]
            inner = feat >= 0
            if not inner.any():
                return self.value[node]
            go_left = x[rows[inner], feat[inner]] <= self.threshold[node[inner]]
            node[inner] = np.where(go_left, self.left[node[inner]], self.right[node[inner]])

    def to_dict(self) -> dict:
        return {"feature": self.feature.tolist(), "threshold": self.threshold.tolist(), "left": self.left.tolist(),
                "right": self.right.tolist(), "value": self.value.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Tree:
        return cls(np.asarray(d["feature"], np.int64), np.asarray(d["threshold"], np.float64),
                   np.asarray(d["left"], np.int64), np.asarray(d["right"], np.int64),
                   np.asarray(d["value"], np.float64))


@dataclass(frozen=True)
class SupraStage:
    """P(S) = sigmoid(``baseline`` + sum of the trees' scores) over :data:`~arritmias.signal.rhythm.FEATURES`; a
    beat (neither V nor not a beat) is S when P(S) >= ``threshold``, chosen on out-of-fold DS1 EC57 SVEB counts,
    and it is not in an irregular rhythm (:func:`~arritmias.signal.rhythm.irregular_rhythm` above ``af_gate``; 0:
    no gate, as in stages saved before it)."""

    trees: tuple[Tree, ...]
    baseline: float
    threshold: float
    features: tuple[str, ...] = FEATURES
    af_gate: float = 0.0

    def own_columns(self, x: np.ndarray) -> np.ndarray:
        """The columns of ``features`` (n, len(features)) from every rhythm feature ``x`` (n, len(FEATURES)): a
        stage saved before a feature was added reads the ones it learnt from."""
        return np.asarray(x)[:, [FEATURES.index(f) for f in self.features]]

    def prob(self, x: np.ndarray) -> np.ndarray:
        """P(S) (n,) float32 for rhythm features ``x`` (n, len(features)), the stage's own columns."""
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(f"rhythm features must have shape (n, {len(self.features)}), got {x.shape}")
        raw = np.full(len(x), self.baseline)
        for tree in self.trees:
            raw += tree.raw(x)
        return (1.0 / (1.0 + np.exp(-raw))).astype(np.float32)

    def to_dict(self) -> dict:
        return {"features": list(self.features), "baseline": self.baseline, "threshold": self.threshold,
                "af_gate": self.af_gate, "trees": [t.to_dict() for t in self.trees]}

    @classmethod
    def from_dict(cls, d: dict) -> SupraStage:
        features = tuple(d["features"])
        trees = tuple(Tree.from_dict(t) for t in d["trees"])
        read = max((int(t.feature.max(initial=-1)) for t in trees), default=-1)
        if not features or not set(features) <= set(FEATURES) or read >= len(features):
            # features this code does not compute, or trees reading columns the stage does not name: refused
            raise ValueError(f"S stage features {list(features)} are not among this code's {list(FEATURES)} or do "
                             f"not match its trees")
        return cls(trees, float(d["baseline"]), float(d["threshold"]), features=features,
                   af_gate=float(d.get("af_gate", 0.0)))

    def replace_threshold(self, threshold: float) -> SupraStage:
        return replace(self, threshold=float(threshold))


def stage_inputs(rr: np.ndarray, not_beat: np.ndarray, is_v: np.ndarray,
                 af_gate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the stage is asked about in one recording's detections, in time order: their rhythm features
    (n, len(FEATURES)) float32 (rows of detections judged not beats are 0: such a detection does not end an RR
    interval, so it is taken out before the rhythm is read), ``asked`` (n,) bool: beats, not V, not in an
    irregular rhythm, and ``irregular`` (n,) bool: the beats in an irregular rhythm (``af_gate``, 0: none). ``rr``
    (n, 3) the detections' RR features, ``not_beat`` / ``is_v`` (n,) bool."""
    beat = ~np.asarray(not_beat, bool)
    is_v = np.asarray(is_v, bool)
    x = np.zeros((len(beat), len(FEATURES)), np.float32)
    irregular = np.zeros(len(beat), bool)
    if beat.any():
        times = beat_times(rr)[beat]
        x[beat] = rhythm_features(times)
        irregular[beat] = irregular_rhythm(times, is_v[beat], af_gate)
    return x, beat & ~is_v & ~irregular, irregular


def supra_probability(stage: SupraStage, rr: np.ndarray, not_beat: np.ndarray,
                      is_v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(S) (n,) float32 of one recording's detections (arguments as :func:`stage_inputs`), NaN where the stage is
    not asked (not a beat, V, or in an irregular rhythm), and which beats lie in an irregular rhythm (n,) bool."""
    x, asked, irregular = stage_inputs(rr, not_beat, is_v, stage.af_gate)
    p_s = np.full(len(asked), np.nan, np.float32)
    if asked.any():
        p_s[asked] = stage.prob(stage.own_columns(x[asked]))
    return p_s, irregular
