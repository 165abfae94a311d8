"""Fitting the S answer's second stage (:mod:`arritmias.model.supra`) on DS1 beats, and its out-of-fold P(S).

Rows are the beats the V network leaves to it (judged beats, not V, not in an irregular rhythm: the stage is never
asked there, so it does not learn there); the label is the reference's S. The folds are
whole patients (:func:`arritmias.training.crossval.assign_folds`, dealt by S count so each fold gets S-rich
patients), so the out-of-fold P(S) on which the threshold is chosen never saw the patient's own beats.
"""

from __future__ import annotations

import numpy as np

from arritmias.config import TrainConfig
from arritmias.model.supra import SupraStage, Tree
from arritmias.training.crossval import assign_folds


def fit_stage(cfg: TrainConfig, x: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> SupraStage:
    """Gradient-boosted trees on rhythm features ``x`` (n, len(FEATURES)) for ``y`` (n,) bool S, classes balanced
    (S is ~2 % of DS1's beats), exported to a :class:`SupraStage` that answers exactly as the fitted model."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=cfg.supra_trees, learning_rate=0.05,
                                           max_leaf_nodes=cfg.supra_leaves, class_weight="balanced",
                                           early_stopping=False, random_state=cfg.seed)
    model.fit(np.asarray(x, np.float64), np.asarray(y, bool))
    trees = []
    for (predictor,) in model._predictors:  # one tree per iteration for two classes
        nodes = predictor.nodes
        trees.append(Tree(np.where(nodes["is_leaf"], -1, nodes["feature_idx"]).astype(np.int64),
                          nodes["num_threshold"].astype(np.float64), nodes["left"].astype(np.int64),
                          nodes["right"].astype(np.int64), nodes["value"].astype(np.float64)))
    return SupraStage(tuple(trees), float(np.ravel(model._baseline_prediction)[0]), threshold,
                      af_gate=cfg.supra_af_gate)


def out_of_fold(cfg: TrainConfig, x: np.ndarray, y: np.ndarray, record: np.ndarray,
                learn: np.ndarray | None = None) -> np.ndarray:
    """P(S) (n,) of every row from a stage fitted on the ``learn`` (n,) bool rows (default all) of the other folds'
    patients (``record`` (n,) names each row's)."""
    learn = np.ones(len(x), bool) if learn is None else np.asarray(learn, bool)
    names = tuple(dict.fromkeys(record.tolist()))
    counts = {r: int(np.sum(y[(record == r) & learn])) for r in names}  # folds dealt by the S beats learnt from
    out = np.zeros(len(x), np.float32)
    for fold in assign_folds(names, counts, min(cfg.cv_folds, len(names))):
        held = np.isin(record, fold)
        train = ~held & learn
        if held.any() and 0 < y[train].sum() < train.sum():  # a fold set without S (a shrunk run) answers 0
            out[held] = fit_stage(cfg, x[train], y[train]).prob(x[held])
    return out
