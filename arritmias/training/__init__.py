"""Training: ``train(cfg)`` (:mod:`~arritmias.training.train`) cross-validates on DS1's patients
(:mod:`~arritmias.training.crossval`), fits networks (:mod:`~arritmias.training.fit`, with the augmentation of
:mod:`~arritmias.training.augment`), chooses the decision rule (:mod:`~arritmias.training.decision`), scores DS2
(:mod:`~arritmias.training.evaluation`) and logs it all to MLflow; Optuna searches
(:mod:`~arritmias.training.tuning`) and champion/challenger promotion (:mod:`~arritmias.training.promotion`) use it."""

from arritmias.training.train import TrainResult, train

__all__ = ["TrainResult", "train"]
