"""Patient-wise cross-validation on real MIT-BIH beats: the held-out reference beats are predicted by the network as
it was at the chosen epoch, not as it ended."""

from __future__ import annotations

import numpy as np
import pytest

from arritmias.config import TrainConfig
from arritmias.data.beats import build_beats
from arritmias.model.detector import Detector, Rule
from arritmias.training.augment import load_noise
from arritmias.training.crossval import _HeldOutScores
from arritmias.training.fit import fit


@pytest.mark.slow
def test_reference_beats_are_predicted_with_the_weights_of_the_chosen_epoch(mitdb, cache_dir):
    """A fold keeps its weights after every epoch and predicts its reference beats only once the epoch is chosen:
    what it gives for epoch 1 of a 2-epoch fit equals a prediction made right after epoch 1, and differs from one
    made with the last weights (so the test would see the end weights used by mistake)."""
    cfg = TrainConfig(train_records=("119", "208"), cv_folds=2, epochs_max=2)
    beats = build_beats(mitdb, cfg.train_records, cfg.deriv_idx, cfg.win, cfg.fs, cache_dir, False)
    held = beats.select(beats.record == "208")
    fold = _HeldOutScores(cfg, held, held)
    seen = []

    def after_epoch(model, epoch):
        figures = fold(model, epoch)  # builds the fold's Detector on the first call
        seen.append(fold.detector.predict(held.windows, held.rr, held.context))
        return figures

    fit(cfg, beats.select(beats.record == "119"), load_noise(None, cfg.fs, cfg.seed), 2, after_epoch,
        progress=False)
    assert len(fold.weights) == 2 and not np.allclose(seen[0], seen[1])
    np.testing.assert_array_equal(fold.reference_probs(1), seen[0])
    assert fold.weights == []  # let go once used
    fresh = Detector(fold.detector.model, Rule(0.5, 0.5, 0.5, 0.5), cfg.win, cfg.fs, cfg.use_context)
    np.testing.assert_array_equal(fresh.predict(held.windows, held.rr, held.context), seen[0])
