"""The options several subcommands share, and the argparse types that check values as they are read."""

from __future__ import annotations

import argparse

from arritmias.data.records import DATA_DIR_ENV
from arritmias.errors import ArritmiasError
from arritmias.tracking.registry import PRODUCTION_ALIAS, model_uri
from arritmias.tracking.runs import DEFAULT_TRACKING_URI, EXPERIMENT

MODEL_URI_DEFAULT = model_uri(PRODUCTION_ALIAS)
EPILOG_DATA = f"Data folder: --data-dir, else ${DATA_DIR_ENV}, else ./mit-bih."


def add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR", help=f"folder of WFDB records (default: ${DATA_DIR_ENV} or ./mit-bih)")


def add_lead_csv(p: argparse.ArgumentParser) -> None:
    """How to read a lead CSV: its rate, amplitude unit and decimal mark (arritmias.data.lead_csv)."""
    p.add_argument("--fs", type=float, help="sampling rate in Hz of lead CSVs (a CSV carries none)")
    p.add_argument("--units", default="mV", choices=["mV", "uV", "V"],
                   help="amplitude unit of lead CSVs (default: mV; WFDB records use their header's units)")
    p.add_argument("--decimal", default="auto", choices=["auto", "point", "comma"],
                   help="decimal mark of lead CSVs (default: auto: ';'-separated files use decimal commas, as "
                        "Spanish-locale spreadsheets write them)")


BOOL_FLAGS = {"use_augment": "augment", "use_ruleguard": "ruleguard",  # --no-augment, --no-ruleguard, --no-context
              "use_context": "context", "use_supra": "supra"}  # --supra


def add_config_options(p: argparse.ArgumentParser) -> None:
    """One option per TrainConfig field, help text from the field's why-comment, default shown. An option left out
    is absent from the parsed namespace (not set to its default), so :func:`config_values` can tell what was
    given from what a params file or the defaults decide."""
    from arritmias.config import field_defaults, field_help

    helps = field_help()
    group = p.add_argument_group("training parameters (each is logged to MLflow as a param)")
    for name, default in field_defaults().items():
        if isinstance(default, bool):
            group.add_argument(f"--{BOOL_FLAGS.get(name, name).replace('_', '-')}", dest=name,
                               action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=f"{helps[name]} (default: on)" if default else helps[name])
            continue
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, default=argparse.SUPPRESS,
                           type=str if isinstance(default, tuple) else type(default),
                           metavar="LIST" if isinstance(default, tuple) else type(default).__name__.upper(),
                           help=f"{helps[name]} (default: {shown})")


def config_values(args: argparse.Namespace, underneath: dict | None = None) -> dict[str, object]:
    """TrainConfig's values: its defaults, then ``underneath`` (a params file's), then the options given."""
    from arritmias.config import field_defaults

    defaults = field_defaults()
    return {**defaults, **(underneath or {}), **{k: v for k, v in vars(args).items() if k in defaults}}


def add_gate_options(p: argparse.ArgumentParser) -> None:
    from arritmias.tracking.registry import GATE_DEFAULTS

    for metric, default in GATE_DEFAULTS.items():
        flag = "--min-" + metric.removeprefix("test_").replace("_", "-").lower()
        p.add_argument(flag, dest=f"gate_{metric}", type=float, default=default, metavar="X",
                       help=f"lowest acceptable {metric} (default: {default})")


def add_tracking(p: argparse.ArgumentParser, experiment: bool = True) -> None:
    p.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking store (default: $MLFLOW_TRACKING_URI, "
                   f"else {DEFAULT_TRACKING_URI})")
    if experiment:
        p.add_argument("--experiment", default=EXPERIMENT, help=f"MLflow experiment (default: {EXPERIMENT})")


def add_run_and_gate(p: argparse.ArgumentParser, verb: str) -> None:
    """Which run (--run-id, the store, the experiment) and the gate's thresholds: what `gate` and `ci-summary`
    take."""
    p.add_argument("--run-id", help=f"run to {verb} (default: the latest finished run)")
    add_tracking(p)
    add_gate_options(p)


def int_in(lo: int, hi: int | None = None, what: str = "a whole number"):
    """argparse type: a whole number in ``[lo, hi]`` (no upper bound when ``hi`` is None)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not {what}") from None
        if value < lo or (hi is not None and value > hi):
            bounds = f"{lo}-{hi}" if hi is not None else f"at least {lo}"
            raise argparse.ArgumentTypeError(f"{value} is not {what} ({bounds})")
        return value

    return parse


positive_int = int_in(1)
port_number = int_in(1, 65535, "a port number")


def share(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value:g} is not a share between 0 and 1")
    return value


def gate_thresholds(args: argparse.Namespace) -> dict[str, float]:
    from arritmias.tracking.registry import GATE_DEFAULTS

    return {m: getattr(args, f"gate_{m}") for m in GATE_DEFAULTS}


def parse_tags(values: list[str]) -> dict[str, str]:
    tags = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ArritmiasError(f"--tag '{item}': expected key=value")
        tags[key.strip()] = value.strip()
    return tags
