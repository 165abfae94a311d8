"""Fitting one network: each epoch's balanced draw of beats, their augmentation, the learning-rate schedule, and the
network's targets and per-epoch figures. Cross-validation fits one per fold, training the final one on all of DS1.
"""

from __future__ import annotations

import math

import numpy as np

from arritmias.config import TrainConfig
from arritmias.data.beats import NOT_A_BEAT, BeatSet
from arritmias.model.preprocess import NOT_BEAT_INDEX, OUTPUTS, V_INDEX, model_inputs
from arritmias.signal.context import Context
from arritmias.training.augment import NoiseBank, add_noise, augment_windows, noise_segments
from arritmias.training.evaluation import average_precision
from arritmias.util.progress import progress as progress_bar


def class_index(aami: np.ndarray) -> np.ndarray:
    """The network's target (n,) int: 0 for a beat that is not ventricular (N, S), 1 for V, 2 for not a beat; -1
    for a fusion beat (F), which is left out of training and of the loss: half ventricular, EC57 counts it
    neither way."""
    out = np.full(len(aami), -1, np.int64)
    out[np.isin(aami, ("N", "S"))] = OUTPUTS.index("N")
    out[aami == "V"] = V_INDEX
    out[aami == NOT_A_BEAT] = OUTPUTS.index("X")
    return out


def focal_loss(y: np.ndarray, probs: np.ndarray, gamma: float) -> float:
    """Mean categorical focal loss (:class:`arritmias.model.FocalLoss`) of class indices ``y`` (n,) (rows with -1
    left out) under ``probs`` (n, 3)."""
    rows = y >= 0
    if not rows.any():
        return float("nan")
    p = np.clip(probs[rows, y[rows]].astype(np.float64), 1e-7, 1 - 1e-7)
    return float(np.mean(-((1 - p) ** gamma) * np.log(p)))


def held_out_figures(y: np.ndarray, probs: np.ndarray, gamma: float) -> dict[str, float]:
    """``loss``, ``accuracy`` (argmax) and ``pr_auc`` (V against every other real beat) of held-out detections."""
    rows = y >= 0
    beats = rows & (y != OUTPUTS.index("X"))
    return {"loss": focal_loss(y, probs, gamma),
            "accuracy": float(np.mean(probs[rows].argmax(axis=1) == y[rows])) if rows.any() else float("nan"),
            "pr_auc": average_precision(y[beats] == V_INDEX, probs[beats, V_INDEX])}


def epoch_rows(classes: np.ndarray, cfg: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """One epoch's rows, shuffled: every V row (class 1), ``balance_ratio`` non-V beats (class 0) and
    ``not_beat_ratio`` not-a-beat examples (class 2) per V row, drawn without replacement (fewer if a class runs
    out; every row of a class when there is no V at all). Rows of class -1 (fusion beats) are never drawn."""
    v = np.flatnonzero(classes == V_INDEX)
    parts = [v]
    for cls, ratio in ((0, cfg.balance_ratio), (2, cfg.not_beat_ratio)):
        pool = np.flatnonzero(classes == cls)
        take = min(len(pool), int(round(ratio * len(v)))) if len(v) else len(pool)
        parts.append(rng.choice(pool, take, replace=False))
    idx = np.concatenate(parts)
    rng.shuffle(idx)
    return idx


def augment_rr(rr: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Scale both intervals of each beat by one factor in [0.8, 1.25]: another heart rate, same rhythm.

    Returns ``(rr, factor)``: the scaled (n, 3) features and the factors (n,), which the caller applies to the
    beat's usual RR too (the whole recording would be faster or slower, not this beat alone).
    """
    factor = rng.uniform(0.8, 1.25, len(rr)).astype(np.float32)
    out = np.array(rr, np.float32)
    out[:, :2] *= factor[:, None]
    return out, factor


def learning_rate_at(cfg: TrainConfig, epoch: int) -> float:
    """Cosine decay from ``cfg.learning_rate`` at epoch 1 to 5 % of it after ``cfg.epochs_max``: a schedule of
    the epoch alone, so the final fit follows the folds' trajectory up to the epoch they chose."""
    return cfg.learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / cfg.epochs_max)))


def epoch_inputs(cfg: TrainConfig, beats: BeatSet, idx: np.ndarray, y: np.ndarray, bank: NoiseBank,
                 rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    """The model inputs of one epoch's rows ``idx`` and their targets (from ``y`` (n,), the class of every row):
    augmented (when configured), an ``aug_unreadable_prob`` share of the real beats buried in noise and their
    target turned into "not a beat", and the record context withheld from a ``context_dropout`` share of beats
    (from all of them when ``use_context`` is off)."""
    windows, rr, context, target = beats.windows[idx], beats.rr[idx], beats.context.select(idx), y[idx].copy()
    if cfg.use_augment:
        windows, gain = augment_windows(windows, cfg, bank, rng)
        rr, factor = augment_rr(rr, rng)
        context = Context(context.template * gain, context.rr_usual * factor)
        buried = (target != NOT_BEAT_INDEX) & (rng.random(len(idx)) < cfg.aug_unreadable_prob)
        if buried.any():
            k = int(buried.sum())
            windows[buried] = add_noise(windows[buried], noise_segments(bank, k, cfg.win, rng),
                                        rng.uniform(*cfg.aug_unreadable_snr_db, k))
            target[buried] = NOT_BEAT_INDEX
    use = rng.random(len(idx)) >= cfg.context_dropout if cfg.use_context else np.zeros(len(idx), bool)
    return model_inputs(windows, rr, context, use), target


def fit(cfg: TrainConfig, beats: BeatSet, bank: NoiseBank, epochs: int, after_epoch=None, on_epoch=None,
        progress: bool = True, desc: str = "training"):
    """Train a fresh network on ``beats`` for ``epochs`` epochs; returns ``(model, history)``.

    ``after_epoch(model, epoch)`` may return a dict of held-out figures that joins the epoch's record;
    ``on_epoch(record)`` then receives the record (``epoch``, ``train_loss``, ``lr_epoch``, ...).
    """
    from arritmias import import_tensorflow

    import_tensorflow()
    import keras

    from arritmias.model.network import build_model

    keras.utils.set_random_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = build_model(cfg)
    y = class_index(beats.aami)
    history = []
    bar = progress_bar(range(1, epochs + 1), enabled=progress, desc=desc, unit="epoch")
    for epoch in bar:
        lr = learning_rate_at(cfg, epoch)
        model.optimizer.learning_rate.assign(lr)
        idx = epoch_rows(y, cfg, rng)
        inputs, target = epoch_inputs(cfg, beats, idx, y, bank, rng)
        h = model.fit(inputs, target.astype(np.float32), batch_size=cfg.batch_size, epochs=1, shuffle=True,
                      verbose=0)
        record = {"epoch": epoch, "train_loss": float(h.history["loss"][-1]), "lr_epoch": lr,
                  **_train_figures(model, inputs, target, cfg)}
        if after_epoch:
            record.update(after_epoch(model, epoch))
        history.append(record)
        if on_epoch:
            on_epoch(record)
        if "val_pr_auc" in record:
            bar.set_postfix(val_pr_auc=f"{record['val_pr_auc']:.4f}")
    return model, history


TRAIN_EPOCH_KEYS = ("train_loss", "train_accuracy", "train_pr_auc", "lr_epoch")  # the final fit's, per epoch
TRAIN_FIGURE_ROWS = 8192  # the epoch's own rows the train_* figures are measured on (a fixed-size sample)


def _train_figures(model, inputs: dict, y: np.ndarray, cfg: TrainConfig) -> dict[str, float]:
    """``train_accuracy`` and ``train_pr_auc`` after an epoch, on (up to ``TRAIN_FIGURE_ROWS`` of) the rows it
    trained on, as they were drawn and augmented: how well the network fits what it was shown."""
    rows = slice(0, min(len(y), TRAIN_FIGURE_ROWS))  # the rows are shuffled already
    # One eager call: Keras's predict() would trace a new function for every fold's model and warn about it.
    probs = np.asarray(model({k: v[rows] for k, v in inputs.items()}, training=False))
    figures = held_out_figures(y[rows], probs, cfg.focal_gamma)
    return {"train_accuracy": figures["accuracy"], "train_pr_auc": figures["pr_auc"]}
