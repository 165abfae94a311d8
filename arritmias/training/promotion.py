"""Champion / challenger promotion with McNemar's test, and rollback.

Both models classify the same annotated beats (N and V, at the reference positions). The challenger takes the
``production`` alias only when its V F1 is not lower than the champion's and McNemar's exact test on the beats
where exactly one of them is right does not show it significantly worse (one-sided p < ``ALPHA``). The old
champion keeps the alias ``previous``; :func:`rollback` swaps them back. Each decision is an MLflow run in the
``promotion_ecg`` experiment with both metric sets and the p-value.

The records default to DS2, as the team's workflow asks; a promotion decided on DS2 makes the promoted model's
DS2 figures an optimistic estimate from then on, so production use should name freshly labelled recordings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arritmias.tracking import registry, runs
from arritmias.errors import DataError

ALPHA = 0.05
PROMOTION_EXPERIMENT = "promotion_ecg"


def mcnemar_worse_p(y: np.ndarray, challenger: np.ndarray, champion: np.ndarray) -> tuple[float, int, int]:
    """One-sided exact McNemar p-value that the challenger is worse, with the beats only the challenger got right
    and those only the champion got right."""
    from arritmias.training.evaluation import mcnemar_greater

    p, champion_only, challenger_only = mcnemar_greater(y, champion, challenger)
    return p, challenger_only, champion_only


@dataclass(frozen=True)
class Decision:
    """The champion/challenger rule applied to one set of labelled beats."""

    accepted: bool
    reason: str
    p_value: float  # one-sided exact McNemar p that the challenger is worse
    challenger_metrics: dict
    champion_metrics: dict
    challenger_only_right: int
    champion_only_right: int


def decide(y: np.ndarray, challenger: np.ndarray, champion: np.ndarray) -> Decision:
    """Whether the challenger may replace the champion, from the true V labels ``y`` and both models' V decisions
    on the same beats (bool arrays of one length): refused when its V F1 is lower, or when McNemar's exact test
    shows it significantly worse (one-sided p < ``ALPHA``); accepted otherwise. No side effects."""
    from arritmias.training.evaluation import binary_metrics

    m_chal, m_champ = binary_metrics(y, challenger), binary_metrics(y, champion)
    p, b, c = mcnemar_worse_p(y, challenger, champion)
    if m_chal["f1_V"] < m_champ["f1_V"]:
        accepted, reason = False, f"V F1 {m_chal['f1_V']:.4f} < champion's {m_champ['f1_V']:.4f}"
    elif p < ALPHA:
        accepted, reason = False, f"McNemar: significantly worse (p={p:.4g})"
    else:
        accepted, reason = True, f"V F1 {m_chal['f1_V']:.4f} >= {m_champ['f1_V']:.4f}, McNemar p={p:.4g}"
    return Decision(accepted, reason, p, m_chal, m_champ, b, c)


@dataclass(frozen=True)
class Challenge(Decision):
    """The decision on two registered versions: which challenged which."""

    challenger: int
    champion: int


def challenge(challenger: int, against: str = registry.PRODUCTION_ALIAS, records: tuple[str, ...] | None = None,
              data_dir=None) -> Challenge:
    """Score ``challenger`` (a version of the registered model) against the version behind alias ``against``."""
    import mlflow

    from arritmias.data.beats import DS2, n_v_beats
    from arritmias.model.detector import Detector
    from arritmias.data.records import resolve_data_dir
    from arritmias.tracking.registry import MODEL_NAME, PREVIOUS_ALIAS, model_uri
    from arritmias.tracking.runs import client as mlflow_client

    client = mlflow_client()
    try:
        champion = int(client.get_model_version_by_alias(MODEL_NAME, against).version)
    except mlflow.exceptions.MlflowException:
        raise DataError(f"{MODEL_NAME} has no alias @{against}: promote a first version with "
                        "`arritmias promote --version N`") from None
    if champion == challenger:
        raise DataError(f"version {challenger} is already @{against}")
    beats = n_v_beats(resolve_data_dir(data_dir), tuple(records or DS2))
    y = beats.aami == "V"
    preds = {}
    for version in (challenger, champion):
        det = Detector.from_model_uri(model_uri(int(version)))
        preds[version] = det.decide(beats.windows, beats.rr, beats.context).is_v
    d = decide(y, preds[challenger], preds[champion])
    result = Challenge(**vars(d), challenger=challenger, champion=champion)
    runs.use_experiment(PROMOTION_EXPERIMENT)
    with mlflow.start_run(run_name=f"challenge_v{challenger}_vs_v{champion}"):
        mlflow.log_params({"challenger_version": challenger, "champion_version": champion, "against": against,
                           "records": ",".join(records or DS2), "alpha": ALPHA})
        mlflow.log_metrics({"accepted": float(d.accepted), "mcnemar_p_worse": d.p_value,
                            "challenger_only_right": d.challenger_only_right,
                            "champion_only_right": d.champion_only_right,
                            **{f"challenger_{k}": v for k, v in d.challenger_metrics.items()},
                            **{f"champion_{k}": v for k, v in d.champion_metrics.items()}})
        mlflow.set_tag("decision", d.reason)
    if d.accepted:
        with registry.registry_lock():
            # The challenge took minutes: a champion replaced meanwhile was not the one beaten.
            if registry.alias_version(against) != int(champion):
                raise DataError(f"@{against} moved to version {registry.alias_version(against)} during the "
                                f"challenge against version {champion}: nothing promoted; challenge it again")
            client.set_registered_model_alias(MODEL_NAME, PREVIOUS_ALIAS, str(champion))
            client.set_registered_model_alias(MODEL_NAME, against, str(challenger))
    return result


def rollback() -> tuple[int, int]:
    """Give ``production`` back to the ``previous`` version (and ``previous`` to the one rolled back)."""
    import mlflow

    from arritmias.tracking.registry import MODEL_NAME, PREVIOUS_ALIAS, PRODUCTION_ALIAS
    from arritmias.tracking.runs import client as mlflow_client

    client = mlflow_client()
    with registry.registry_lock():
        try:
            current = client.get_model_version_by_alias(MODEL_NAME, PRODUCTION_ALIAS).version
            previous = client.get_model_version_by_alias(MODEL_NAME, PREVIOUS_ALIAS).version
        except mlflow.exceptions.MlflowException:
            raise DataError(f"{MODEL_NAME} has no @{PREVIOUS_ALIAS} version to roll back to") from None
        client.set_registered_model_alias(MODEL_NAME, PRODUCTION_ALIAS, previous)
        client.set_registered_model_alias(MODEL_NAME, PREVIOUS_ALIAS, current)
    return int(previous), int(current)
