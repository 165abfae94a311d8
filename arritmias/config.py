"""TrainConfig: every choice a training run makes, validated when built; its fields are the run's MLflow params.

The CLI options of ``arritmias train`` / ``deteccionarritmias.py`` are generated from these fields
(``--epochs-max 10``, ``--no-augment``), so a default is changed by an option, never by editing a file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

from arritmias.data.beats import DS1, DS2, parse_records
from arritmias.errors import ConfigError


def param(default, help: str):
    """A TrainConfig field: its default and the why of that default, which ``--help`` shows beside the option."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    """The parameters of one training run (all logged to MLflow as params)."""

    # --- data ---------------------------------------------------------------------------------------------
    train_records: tuple[str, ...] = param(DS1, "inter-patient split (de Chazal 2004): DS1 patients train the model")
    cv_folds: int = param(
        5, "patient-wise folds of train_records: every patient held out once for epochs/threshold/rules")
    test_records: tuple[str, ...] = param(DS2, "DS2 patients: reported on, never used to choose anything")
    deriv_idx: int = param(0, "lead index, MLII first: the lead the whole MIT-BIH literature reports on")
    fs: float = param(360.0, "Hz; MIT-BIH's native rate, other databases are resampled to it")
    win: int = param(360, "samples = 1 s: the QRS, the T wave and the P wave of the next beat at normal rates")
    # --- optimisation -------------------------------------------------------------------------------------
    seed: int = param(
        42, "fixes sampling, augmentation and weight init: the same command gives the same model, bit for bit on CPU")
    epochs_max: int = param(16, "epochs each fold runs; cross-validation picks the best, the final fit runs that many")
    batch_size: int = param(256, "large enough for stable batch statistics with ~1 V in 4, small enough for CPU speed")
    learning_rate: float = param(
        1e-3, "Adam's default at epoch 1; cosine decay over epochs_max, same in folds and final")
    focal_gamma: float = param(2.0, "Lin et al. 2017's default: down-weights the many easy N beats")
    balance_ratio: float = param(3.0, "N beats drawn per V beat each epoch (fresh draw every epoch)")
    not_beat_ratio: float = param(
        1.0, "'not a beat' examples drawn per V beat each epoch: the detector's own false detections and decoys")
    decoys_per_record: int = param(
        150, "beat pairs per training record whose T wave, P wave and a point between them become 'not a beat' "
             "examples: the false detections a QRS detector makes elsewhere (DS1 alone has few)")
    # --- model --------------------------------------------------------------------------------------------
    filters: tuple[int, ...] = param((32, 64, 64), "conv blocks, first strided; (16,32,32) lost cross-validated PR-AUC")
    kernel_sizes: tuple[int, ...] = param((7, 5, 5), "7 samples at 360 Hz ~ 19 ms; later layers see wider spans")
    # The first conv's stride: 2 runs the network at 180 Hz (1.93 M multiply-adds per beat), 4 at 90 Hz (0.96 M).
    # Stride 4 tied on one seed of benchmarks/bench_network_size.py (cross-validated PR-AUC 0.9285 vs 0.9286) but
    # lost on three (bench_training: 0.9246 vs 0.9369 mean, seeds 42-44), beyond the 0.005 tolerance: 2 stays.
    first_stride: int = param(
        2, "first conv's stride: 2 runs the network at 180 Hz, 4 at 90 Hz (half the multiply-adds)")
    separable: bool = param(False, "depthwise-separable convs after the first: ~k times fewer multiply-adds per layer")
    dense_units: int = param(32, "the merged head; more overfits the ~3k training V beats")
    rr_units: int = param(16, "the small dense branch over the 3 RR features")
    dropout: float = param(0.2, "on the head only, against memorising the training patients' beat shapes")
    # --- record context (arritmias/signal/context.py) ------------------------------------------------------------
    use_context: bool = param(True, "judge each beat against the patient's usual beat and RR (False: the beat alone)")
    context_dropout: float = param(0.2, "share of training beats shown without context, so one network answers both")
    # --- augmentation (training only) ---------------------------------------------------------------------
    use_augment: bool = param(True, "test patients differ in gain, wander, noise and detector jitter")
    aug_scale: float = param(0.25, "amplitude x U(1-s, 1+s): electrode gain differs between patients")
    aug_wander_mv: float = param(0.3, "peak baseline wander added (mV); NSTDB 'bw' is of this order")
    aug_shift: int = param(5, "R-peak jitter in samples (~14 ms): what a QRS detector adds in serving")
    aug_noise_prob: float = param(0.5, "share of beats that get noise (real NSTDB 'bw'/'ma' when available)")
    aug_snr_db: tuple[float, float] = param((6.0, 24.0), "SNR range of the added noise, the span nst tests use")
    aug_unreadable_prob: float = param(
        0.1, "share of real beats buried in noise below aug_unreadable_snr_db and shown as 'not a beat': a beat in "
             "noise is unreadable (Q), not a PVC")
    aug_unreadable_snr_db: tuple[float, float] = param(
        (-6.0, 0.0), "SNR range (dB) of those beats: at 0 dB the noise carries the QRS's power (nst's definition)")
    # --- morphology families (arritmias/signal/families.py) -----------------------------------------------------
    family_corr: float = param(
        0.9, "QRS correlation at which a beat joins a family of the recording's earlier beats (OSEA's templates "
             "match at a similar level)")
    family_weights: tuple[float, ...] = param(
        (0.0, 0.5, 0.8), "weights of a family's evidence against the beat's own that cross-validation chooses "
                         "from, in detected mode (0: no families, the ablation)")
    # --- decision -----------------------------------------------------------------------------------------
    target_prec: float = param(0.98, "V precision the validation threshold aims for (the DS2 target)")
    target_rec: float = param(
        0.96, "V recall it aims for; when both cannot be met, the best F1 (a false PVC costs a report its trust)")
    target_prec_s: float = param(
        0.8, "S precision the S thresholds aim for: a premature atrial beat is subtler than a PVC (its QRS is the "
             "patient's usual one), and published inter-patient SVEB +P is below 0.5")
    target_rec_s: float = param(0.8, "S recall they aim for; when both cannot be met, the best F1")
    use_supra: bool = param(
        False, "the S answer (supraventricular ectopic beats, from the rhythm around each beat): off by default "
               "until its end-to-end figures reach the targets of docs/benchmarks.md; a wrong SVE count is worse "
               "than none")
    supra_trees: int = param(
        200, "boosted trees of the S stage (P(S) from the rhythm around each beat): chosen on DS1 out of fold")
    supra_leaves: int = param(15, "leaves per tree of the S stage: interactions of 3-4 rhythm features at most")
    supra_af_gate: float = param(
        0.15, "no S answer in an irregular rhythm (atrial fibrillation): median successive RR change above which a "
              "beat's rhythm is irregular, chosen on DS1's rhythm annotations; 0 turns the gate off")
    use_ruleguard: bool = param(True, "physiological post-filter; each rule kept only if it helps out of fold")

    def __post_init__(self) -> None:
        for name in ("train_records", "test_records", "filters", "kernel_sizes", "aug_snr_db", "aug_unreadable_snr_db",
                     "family_weights"):
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
        need(len(set(self.train_records)) == len(self.train_records), "train_records lists a record twice")
        need(2 <= self.cv_folds <= len(self.train_records),
             f"cv_folds={self.cv_folds}: must be between 2 and the number of train_records "
             f"({len(self.train_records)}): each fold holds out at least one patient")
        need(not set(self.train_records) & set(self.test_records),
             f"train and test share records {sorted(set(self.train_records) & set(self.test_records))}: "
             "the inter-patient split keeps test patients unseen")
        need(self.win >= 64 and self.win % 2 == 0, f"win={self.win}: must be an even number of samples >= 64")
        need(self.fs > 0, f"fs={self.fs}: must be positive (Hz)")
        need(self.deriv_idx >= 0, f"deriv_idx={self.deriv_idx}: must be >= 0")
        need(self.epochs_max >= 1, f"epochs_max={self.epochs_max}: must be >= 1")
        need(self.batch_size >= 1, f"batch_size={self.batch_size}: must be >= 1")
        need(self.learning_rate > 0, f"learning_rate={self.learning_rate}: must be > 0")
        need(self.focal_gamma >= 0, f"focal_gamma={self.focal_gamma}: must be >= 0")
        need(self.balance_ratio > 0, f"balance_ratio={self.balance_ratio}: must be > 0")
        need(self.not_beat_ratio >= 0, f"not_beat_ratio={self.not_beat_ratio}: must be >= 0")
        need(self.supra_trees >= 1 and self.supra_leaves >= 2, "supra_trees must be >= 1 and supra_leaves >= 2")
        need(0 <= self.supra_af_gate < 5, f"supra_af_gate={self.supra_af_gate}: must be >= 0 (0: no gate) and < 5")
        need(self.decoys_per_record >= 0, f"decoys_per_record={self.decoys_per_record}: must be >= 0")
        need(0 < self.family_corr < 1, f"family_corr={self.family_corr}: must be in (0, 1)")
        need(len(self.family_weights) > 0 and all(0 <= w <= 1 for w in self.family_weights),
             f"family_weights={self.family_weights}: one or more weights in [0, 1]")
        need(len(self.filters) == len(self.kernel_sizes) and len(self.filters) > 0,
             "filters and kernel_sizes must have the same, non-zero length")
        need(all(f > 0 for f in self.filters) and all(k > 0 for k in self.kernel_sizes),
             "filters and kernel_sizes must be positive")
        need(1 <= self.first_stride <= 6, f"first_stride={self.first_stride}: must be 1 to 6")
        need(0 <= self.dropout < 1, f"dropout={self.dropout}: must be in [0, 1)")
        need(0 <= self.context_dropout < 1, f"context_dropout={self.context_dropout}: must be in [0, 1)")
        need(0 <= self.aug_scale < 1, f"aug_scale={self.aug_scale}: must be in [0, 1)")
        need(0 <= self.aug_noise_prob <= 1, f"aug_noise_prob={self.aug_noise_prob}: must be in [0, 1]")
        need(len(self.aug_snr_db) == 2 and self.aug_snr_db[0] <= self.aug_snr_db[1],
             "aug_snr_db must be (low, high) in dB")
        need(0 <= self.aug_unreadable_prob < 1, f"aug_unreadable_prob={self.aug_unreadable_prob}: must be in [0, 1)")
        need(len(self.aug_unreadable_snr_db) == 2 and self.aug_unreadable_snr_db[0] <= self.aug_unreadable_snr_db[1]
             and self.aug_unreadable_snr_db[1] < self.aug_snr_db[0],
             "aug_unreadable_snr_db must be (low, high) in dB, below aug_snr_db's low end")
        need(0 <= self.aug_shift < self.win // 4, f"aug_shift={self.aug_shift}: must be in [0, win/4)")
        need(0 < self.target_prec <= 1 and 0 < self.target_rec <= 1, "target_prec/target_rec must be in (0, 1]")
        need(0 < self.target_prec_s <= 1 and 0 < self.target_rec_s <= 1,
             "target_prec_s/target_rec_s must be in (0, 1]")

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


def field_defaults() -> dict[str, object]:
    """Field name -> default value, in declaration order (used to generate CLI options)."""
    return {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
            for f in fields(TrainConfig)}


def field_help() -> dict[str, str]:
    """Field name -> the *why* of its default (the field's ``help`` metadata), for ``--help``."""
    return {f.name: f.metadata["help"] for f in fields(TrainConfig)}


PARAMS_SECTION = "train"  # params.yaml's section DVC tracks (dvc.yaml: ``params: [train]``)
# The evaluate stage's own section: the records it scores, by default the test patients.
EVALUATE_PARAMS = {"records": ("DS2", "records the evaluate stage scores (EC57, both modes): DS2, the test patients")}


def params_yaml() -> str:
    """params.yaml for DVC: TrainConfig's defaults under ``train:``, each with the why of its default. Generated
    from the fields (``make params``), never edited apart from them: ``tests/project/test_dvc.py`` compares."""
    lines = ["# Generated from arritmias/config.py's TrainConfig by `make params`: the defaults of a training run.",
             "# `dvc repro` reruns the pipeline when a value here changes; options on the command line still win.",
             f"{PARAMS_SECTION}:"]
    helps = field_help()
    for name, value in field_defaults().items():
        shown = "[" + ", ".join(map(repr, value)) + "]" if isinstance(value, tuple) else \
            ("true" if value is True else "false" if value is False else repr(value))
        lines.append(f"  {name}: {shown.replace(chr(39), chr(34))}  # {helps[name]}")
    lines.append("evaluate:")
    lines += [f"  {name}: {value}  # {why}" for name, (value, why) in EVALUATE_PARAMS.items()]
    return "\n".join(lines) + "\n"


def read_params(path) -> dict[str, object]:
    """The TrainConfig values of a params file's ``train:`` section (a ConfigError names an unknown key)."""
    from pathlib import Path

    import yaml

    try:
        section = (yaml.safe_load(Path(path).read_text()) or {}).get(PARAMS_SECTION) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"params file '{path}': {exc}") from None
    unknown = sorted(set(section) - set(field_defaults()))
    if unknown:
        raise ConfigError(f"params file '{path}': {', '.join(unknown)} not TrainConfig fields")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}


if __name__ == "__main__":
    print(params_yaml(), end="")
