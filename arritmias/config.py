"""TrainConfig: every choice a training run makes, validated when built; its fields are the run's MLflow params.

The CLI options of ``arritmias train`` / ``deteccionarritmias.py`` are generated from these fields
(``--epochs-max 10``, ``--no-augment``), so a default is changed by an option, never by editing a file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

from arritmias.beats import DS1, DS2, parse_records
from arritmias.errors import ConfigError

# DS1 patients held out for early stopping, the threshold and the RuleGuard decision. Chosen (without looking
# at DS2) to hold about a quarter of DS1's V beats from several morphologies: 106 (multiform, bigeminy),
# 116 (uniform), 201 (with atrial fibrillation), 215 (frequent), plus 220 and 230 (almost no V) so that
# false positives on clean sinus rhythm weigh in the threshold.
VAL_RECORDS = ("106", "116", "201", "215", "220", "230")


@dataclass(frozen=True)
class TrainConfig:
    """The parameters of one training run (all logged to MLflow as params)."""

    # --- data ---------------------------------------------------------------------------------------------
    train_records: tuple[str, ...] = DS1  # inter-patient split (de Chazal 2004): DS1 patients train the model
    val_records: tuple[str, ...] = VAL_RECORDS  # DS1 patients held out: epochs, threshold, RuleGuard chosen here
    test_records: tuple[str, ...] = DS2  # DS2 patients: reported on, never used to choose anything
    deriv_idx: int = 0  # lead index, MLII first: the lead the whole MIT-BIH literature reports on
    fs: float = 360.0  # Hz; MIT-BIH's native rate, other databases are resampled to it
    win: int = 360  # samples = 1 s: the QRS, the T wave and the P wave of the next beat at normal rates
    # --- optimisation -------------------------------------------------------------------------------------
    seed: int = 42  # fixes sampling, augmentation and weight init: the same command gives the same model
    epochs_max: int = 30  # an upper bound: early stopping on validation PR-AUC ends most runs sooner
    patience: int = 5  # epochs without a better validation PR-AUC before stopping
    batch_size: int = 256  # large enough for stable batch statistics with ~1 V in 4, small enough for CPU speed
    learning_rate: float = 1e-3  # Adam's default; halved when validation PR-AUC stalls for 2 epochs
    focal_gamma: float = 2.0  # Lin et al. 2017's default: down-weights the many easy N beats
    focal_alpha: float = 0.5  # classes are rebalanced by sampling already, so no extra class weight
    balance_ratio: float = 3.0  # N beats drawn per V beat each epoch (fresh draw every epoch)
    # --- model --------------------------------------------------------------------------------------------
    filters: tuple[int, ...] = (32, 64, 64)  # conv blocks, first strided; beat (16,32,32) on validation PR-AUC
    kernel_sizes: tuple[int, ...] = (7, 5, 5)  # 7 samples at 360 Hz ~ 19 ms; later layers see wider spans
    dense_units: int = 32  # the merged head; more overfits the ~3k training V beats
    rr_units: int = 16  # the small dense branch over the 3 RR features
    dropout: float = 0.2  # on the head only, against memorising the training patients' beat shapes
    # --- augmentation (training only) ---------------------------------------------------------------------
    use_augment: bool = True  # test patients differ in gain, wander, noise and detector jitter
    aug_scale: float = 0.25  # amplitude x U(1-s, 1+s): electrode gain differs between patients
    aug_wander_mv: float = 0.3  # peak baseline wander added (mV); NSTDB 'bw' is of this order
    aug_shift: int = 5  # R-peak jitter in samples (~14 ms): what a QRS detector adds in serving
    aug_noise_prob: float = 0.5  # share of beats that get noise (real NSTDB 'bw'/'ma' when available)
    aug_snr_db: tuple[float, float] = (6.0, 24.0)  # SNR range of the added noise, the span nst tests use
    # --- decision -----------------------------------------------------------------------------------------
    target_prec: float = 0.98  # V precision the validation threshold aims for (the DS2 target)
    target_rec: float = 0.96  # V recall it aims for; wins when both cannot be met (a missed PVC is worse)
    use_ruleguard: bool = True  # physiological post-filter; kept only when validation V F1 improves with it

    def __post_init__(self) -> None:
        for name in ("train_records", "val_records", "test_records", "filters", "kernel_sizes", "aug_snr_db"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = parse_records(value) if name.endswith("records") else tuple(
                    type(getattr(TrainConfig, name)[0])(v) for v in value.replace(",", " ").split())
                object.__setattr__(self, name, value)
            else:
                object.__setattr__(self, name, tuple(value))
        self._validate()

    def _validate(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        need(len(self.train_records) > 0, "train_records is empty")
        need(len(self.val_records) > 0, "val_records is empty: validation must come from held-out patients")
        need(set(self.val_records) <= set(self.train_records),
             "val_records must be patients of train_records (validation comes from the training patients)")
        need(len(set(self.train_records) - set(self.val_records)) > 0, "no training records left after val")
        need(not set(self.train_records) & set(self.test_records),
             f"train and test share records {sorted(set(self.train_records) & set(self.test_records))}: "
             "the inter-patient split keeps test patients unseen")
        need(self.win >= 64 and self.win % 2 == 0, f"win={self.win}: must be an even number of samples >= 64")
        need(self.fs > 0, f"fs={self.fs}: must be positive (Hz)")
        need(self.deriv_idx >= 0, f"deriv_idx={self.deriv_idx}: must be >= 0")
        need(self.epochs_max >= 1, f"epochs_max={self.epochs_max}: must be >= 1")
        need(self.patience >= 1, f"patience={self.patience}: must be >= 1")
        need(self.batch_size >= 1, f"batch_size={self.batch_size}: must be >= 1")
        need(self.learning_rate > 0, f"learning_rate={self.learning_rate}: must be > 0")
        need(self.focal_gamma >= 0, f"focal_gamma={self.focal_gamma}: must be >= 0")
        need(0 < self.focal_alpha < 1, f"focal_alpha={self.focal_alpha}: must be in (0, 1)")
        need(self.balance_ratio > 0, f"balance_ratio={self.balance_ratio}: must be > 0")
        need(len(self.filters) == len(self.kernel_sizes) and len(self.filters) > 0,
             "filters and kernel_sizes must have the same, non-zero length")
        need(all(f > 0 for f in self.filters) and all(k > 0 for k in self.kernel_sizes),
             "filters and kernel_sizes must be positive")
        need(0 <= self.dropout < 1, f"dropout={self.dropout}: must be in [0, 1)")
        need(0 <= self.aug_scale < 1, f"aug_scale={self.aug_scale}: must be in [0, 1)")
        need(0 <= self.aug_noise_prob <= 1, f"aug_noise_prob={self.aug_noise_prob}: must be in [0, 1]")
        need(len(self.aug_snr_db) == 2 and self.aug_snr_db[0] <= self.aug_snr_db[1],
             "aug_snr_db must be (low, high) in dB")
        need(0 <= self.aug_shift < self.win // 4, f"aug_shift={self.aug_shift}: must be in [0, win/4)")
        need(0 < self.target_prec <= 1 and 0 < self.target_rec <= 1, "target_prec/target_rec must be in (0, 1]")

    @property
    def fit_records(self) -> tuple[str, ...]:
        """Training records less the validation patients: the beats the weights are fitted on."""
        return tuple(r for r in self.train_records if r not in self.val_records)

    def replace(self, **changes) -> TrainConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_params(self) -> dict[str, str | int | float | bool]:
        """Flat MLflow params: tuples become comma-separated strings."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = ",".join(str(v) for v in value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_params(cls, params: dict) -> TrainConfig:
        """Rebuild a config from :meth:`to_params` output (or MLflow's all-strings params)."""
        kwargs = {}
        for f in fields(cls):
            if f.name not in params:
                continue
            value, default = params[f.name], getattr(cls, f.name, None)
            if isinstance(default, bool):
                value = value if isinstance(value, bool) else str(value).lower() == "true"
            elif isinstance(default, (int, float)) and not isinstance(value, (int, float)):
                value = type(default)(float(value)) if isinstance(default, int) else float(value)
            kwargs[f.name] = value
        return cls(**kwargs)


def field_defaults() -> dict[str, object]:
    """Field name -> default value, in declaration order (used to generate CLI options)."""
    return {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
            for f in fields(TrainConfig)}





def field_help() -> dict[str, str]:
    """Field name -> the comment beside it in this file (the *why* of each default), for ``--help``."""
    import inspect
    import re

    helps = {}
    for line in inspect.getsource(TrainConfig).splitlines():
        m = re.match(r"\s+(\w+): [^=]+= .*?#\s*(.+)$", line)
        if m:
            helps[m.group(1)] = m.group(2).strip()
    return helps
