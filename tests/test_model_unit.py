"""The network's cost in multiply-adds per beat, counted from its layers, against the count by hand."""

from __future__ import annotations

from arritmias.config import TrainConfig
from arritmias.model import build_model, macs_per_beat


def test_macs_per_beat_counts_convolutions_and_dense_layers():
    cfg = TrainConfig(first_stride=4)  # 360 samples -> 90, pooled to 45, then 22
    by_hand = (90 * 7 * 2 * 32 + 45 * 5 * 32 * 64 + 22 * 5 * 64 * 64  # the three convolutions
               + 4 * 16 + (2 * 64 + 16) * 32 + 32)  # RR branch, head, output
    assert macs_per_beat(build_model(cfg)) == by_hand == 956_384
    separable = TrainConfig(first_stride=4, separable=True)  # depthwise k*c_in plus pointwise c_in*c_out per output sample
    by_hand_sep = (90 * 7 * 2 * 32 + 45 * (5 * 32 + 32 * 64) + 22 * (5 * 64 + 64 * 64)
                   + 4 * 16 + (2 * 64 + 16) * 32 + 32)
    assert macs_per_beat(build_model(separable)) == by_hand_sep
    assert macs_per_beat(build_model(TrainConfig())) == 1_928_544  # the default, stride 2: the issue's ~1.9 M
