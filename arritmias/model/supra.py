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

from dataclasses import dataclass

import numpy as np

from arritmias.signal.rhythm import FEATURES


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
    beat (neither V nor not a beat) is S when P(S) >= ``threshold``, chosen on out-of-fold DS1 EC57 SVEB counts."""

    trees: tuple[Tree, ...]
    baseline: float
    threshold: float
    features: tuple[str, ...] = FEATURES

    def prob(self, x: np.ndarray) -> np.ndarray:
        """P(S) (n,) float32 for rhythm features ``x`` (n, len(features))."""
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(f"rhythm features must have shape (n, {len(self.features)}), got {x.shape}")
        raw = np.full(len(x), self.baseline)
        for tree in self.trees:
            raw += tree.raw(x)
        return (1.0 / (1.0 + np.exp(-raw))).astype(np.float32)

    def to_dict(self) -> dict:
        return {"features": list(self.features), "baseline": self.baseline, "threshold": self.threshold,
                "trees": [t.to_dict() for t in self.trees]}

    @classmethod
    def from_dict(cls, d: dict) -> SupraStage:
        if tuple(d["features"]) != FEATURES:  # a model whose features this code does not compute is refused
            raise ValueError(f"S stage features {d['features']} are not this code's {list(FEATURES)}")
        return cls(tuple(Tree.from_dict(t) for t in d["trees"]), float(d["baseline"]), float(d["threshold"]))

    def replace_threshold(self, threshold: float) -> SupraStage:
        return SupraStage(self.trees, self.baseline, float(threshold), self.features)
