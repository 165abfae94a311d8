"""Entrenamiento del detector de PVC (AAMI clase V) — the training job users know.

    python deteccionarritmias.py              # default training, tracked in MLflow (sqlite:///mlflow.db)
    python deteccionarritmias.py --help       # every option; e.g. --no-augment, --no-ruleguard, --epochs-max 10

Same as `arritmias train`: this script only forwards its options.
"""

import sys

from arritmias.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
