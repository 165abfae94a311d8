"""DS1 cross-validation of the default training with the S class (issue 29): every figure training's steps 1-4 log,
one seed. DS2 is never read.

    python benchmarks/bench_supra_cv.py [SEED]     (~64 min a seed on the 2-core AVX2 EPYC)

Seed 42 (results/supra_cv_seed42.json) against the 3-output network of main on the same seed
(results/network_size_runs.jsonl, "stride 2, 32-64-64"): VEB Se 80.7 / +P 84.5 % against 89.2 / 93.6 %, PR-AUC
0.841 against 0.903, best epoch 16 (= epochs_max); SVEB Se 45.3 / +P 35.1 %. The fourth output as built here costs
the V answer and does not reach the S targets on DS1: not merged.
"""
import json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from arritmias.config import TrainConfig
from arritmias.data.records import resolve_data_dir
from arritmias.training.augment import find_noise_dir, load_noise
from arritmias.training.crossval import cross_validate
from arritmias.training.decision import choose_decision_rule
from arritmias.training.train import setup

seed = int(sys.argv[1]) if len(sys.argv) > 1 else 42
cfg = TrainConfig(seed=seed)
data_dir = resolve_data_dir(None)
t0 = time.perf_counter()
where = setup(data_dir, None, "sqlite:///" + tempfile.mkdtemp() + "/scratch.db", "supra_cv", False)
train_set = where.training_beats(cfg)
reference = where.beats(cfg, cfg.train_records)
bank = load_noise(find_noise_dir(data_dir), cfg.fs, cfg.seed)
cv = cross_validate(cfg, train_set, reference, bank, progress=False)
m = choose_decision_rule(cfg, cv, where.references(cfg, cfg.train_records)).metrics
out = {"seed": seed, "cv_seconds": round(time.perf_counter() - t0), **{k: round(float(v), 4) for k, v in m.items()}}
(Path(__file__).resolve().parent / "results" / f"supra_cv_seed{seed}.json").write_text(json.dumps(out, indent=1))
print(json.dumps(out, indent=1))
