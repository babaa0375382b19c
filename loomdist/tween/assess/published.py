"""LOOM's published benchmark numbers, copied from /work/shared/spec/loom-training.md.

Source: openfluke/loom docs/step_tween_assessment.md at fcad322, as transcribed in the spec.
Accuracies in %, None where LOOM publishes nothing.
"""

from __future__ import annotations

# Spec 5.3: Test 17 per-window accuracy, Dense-6L, 15 one-second windows.
TEST17_WINDOWS = {
    "NormalBP": (0, 0, 13, 24, 0, 85, 100, 84, 100, 100, 6, 25, 24, 34, 39),
    "StepBP": (43, 43, 1, 7, 0, 100, 100, 100, 75, 0, 0, 0, 0, 0, 0),
    "Tween": (18, 0, 1, 5, 0, 60, 100, 100, 100, 59, 0, 22, 33, 0, 22),
    "TweenChain": (0, 8, 1, 0, 0, 84, 100, 100, 93, 100, 0, 0, 16, 1, 22),
    "StepTweenChain": (41, 41, 42, 44, 44, 99, 100, 100, 100, 100, 45, 47, 45, 41, 42),
}
TEST17_TOTAL_OUTPUTS_STC = 78_000  # "about 78k outputs in 15 s" (issue 5, spec 5.6)

# Spec 5.4: Test 18, STC average accuracy vs the best other mode (one run each).
TEST18_STC_VS_BEST = {
    "Dense-3L": (64.0, 44.0, "NormalBP"), "Dense-5L": (58.7, 41.2, "NormalBP"),
    "Dense-9L": (60.8, 62.4, "StepBP"), "Conv2D-3L": (60.7, 49.2, "NormalBP"),
    "Conv2D-5L": (58.6, 43.9, "Tween"), "Conv2D-9L": (60.7, 61.3, "StepBP"),
    "RNN-3L": (59.1, 53.3, "StepBP"), "RNN-5L": (59.2, 46.7, "StepBP"),
    "RNN-9L": (61.1, 60.2, "StepBP"), "LSTM-3L": (54.8, 59.1, "StepBP"),
    "LSTM-5L": (55.8, 59.8, "StepBP"), "LSTM-9L": (55.0, 57.6, "StepBP"),
    "Attn-3L": (51.5, 57.3, "StepBP"),
}
# Spec 5.4: Dense-5L timeline (windows 1-10).
TEST18_DENSE5_WINDOWS = {
    "StepTweenChain": (43, 47, 43, 78, 100, 88, 77, 40, 36, 36),
    "StepBP": (35, 1, 0, 68, 100, 49, 0, 0, 0, 0),
    "NormalBP": (0, 33, 0, 65, 95, 70, 71, 20, 41, 17),
}

# Spec 5.5: Test 19 SPARTA, mean (population std) of per-run average accuracy, 100 runs.
TEST19_MEAN_STD = {
    "Dense-3L": {"NormalBP": (39.1, 4.2), "StepBP": (43.8, 10.7), "StepTweenChain": (64.0, 0.8)},
    "Dense-5L": {"NormalBP": (41.4, 4.8), "StepBP": (53.6, 5.8), "StepTweenChain": (62.5, 0.8)},
    "Dense-9L": {"NormalBP": (32.2, 7.1), "StepBP": (47.3, 10.8), "StepTweenChain": (58.7, 1.9)},
    "Conv2D-3L": {"NormalBP": (45.5, 3.6), "StepBP": (62.9, 1.4),
                  "StepTweenChain": (58.5, 1.1)},
    "Conv2D-5L": {"NormalBP": (43.5, 3.8), "StepBP": (61.0, 3.4),
                  "StepTweenChain": (58.1, 1.3)},
    "Conv2D-9L": {"NormalBP": (38.9, 4.3), "StepBP": (61.3, 1.5),
                  "StepTweenChain": (57.6, 2.5)},
    "RNN-3L": {"NormalBP": (42.2, 3.7), "StepBP": (56.7, 5.0), "StepTweenChain": (62.5, 1.5)},
    "RNN-5L": {"NormalBP": (41.1, 4.1), "StepBP": (60.7, 1.3), "StepTweenChain": (60.8, 1.4)},
    "RNN-9L": {"NormalBP": (37.0, 4.4), "StepBP": (60.6, 0.8), "StepTweenChain": (60.6, 1.2)},
    "LSTM-3L": {"NormalBP": (45.9, 3.3), "StepBP": (59.7, 1.2), "StepTweenChain": (57.9, 1.2)},
    "LSTM-5L": {"NormalBP": (42.2, 4.2), "StepBP": (57.8, 1.5), "StepTweenChain": (54.8, 1.8)},
    "LSTM-9L": {"NormalBP": (36.9, 5.0), "StepBP": (55.8, 2.6), "StepTweenChain": (53.2, 2.9)},
    "Attn-3L": {"NormalBP": (32.3, 6.6), "StepBP": (56.5, 2.7), "StepTweenChain": (46.3, 3.6)},
    "Attn-5L": {"NormalBP": (32.9, 7.5), "StepBP": (55.1, 3.1), "StepTweenChain": (47.4, 5.0)},
    "Attn-9L": {"NormalBP": (34.5, 6.1), "StepBP": (54.4, 3.5), "StepTweenChain": (47.8, 4.5)},
}
# Spec 5.5: Test 19 Dense-3L mean window accuracy (100 runs).
TEST19_DENSE3_WINDOWS = {
    "NormalBP": (4, 12, 18, 51, 87, 86, 56, 23, 26, 27),
    "StepBP": (44, 45, 39, 50, 67, 71, 54, 21, 22, 23),
    "StepTweenChain": (42, 46, 47, 81, 98, 98, 82, 49, 49, 48),
}

# Spec 5.2: Test 16 final accuracy per network (NormalBP, NormTween, StepTween, TChain).
TEST16_FINAL = {
    "Dense-3L": (98.8, 100.0, 98.4, 99.0), "Conv2D-3L": (81.6, 100.0, 92.0, 92.8),
    "Dense-5L": (99.8, 100.0, 78.2, 80.6), "Conv2D-5L": (99.2, 99.8, 63.4, 71.2),
    "Dense-9L": (99.4, 99.0, 67.0, 61.0), "Conv2D-9L": (99.4, 60.0, 41.6, 36.2),
    "RNN-9L": (91.0, 64.4, 51.6, 52.4), "Dense-15L": (98.2, 67.6, 47.4, 51.8),
    "Dense-20L": (85.8, 80.4, 52.6, 53.2), "Conv2D-15L": (93.0, 51.4, 52.0, 43.2),
    "Conv2D-20L": (67.8, 44.6, 44.6, 44.6),
}
TEST16_FINAL_MODES = ("NormalBP", "NormTween", "StepTween", "StepTweenChain")
# Spec 5.2: Test 16 step modes at 3 layers (Step+BP, StepTween, TChain).
TEST16_STEP_3L = {"Dense-3L": (72.2, 98.4, 99.0), "Conv2D-3L": (58.4, 92.0, 92.8),
                  "RNN-3L": (81.2, 76.4, 79.0), "LSTM-3L": (60.6, 50.4, 54.4)}
TEST16_STEP_MODES = ("StepBP", "StepTween", "StepTweenChain")
# BatchTween and StepBatch: "~48-52 %" everywhere (the majority class rate 48.4 %).
TEST16_BATCH_RANGE = (48.0, 52.0)


def published_test16(config: str) -> dict:
    """{mode: accuracy} LOOM publishes for a Test 16 config (empty when none)."""
    out = dict(zip(TEST16_FINAL_MODES, TEST16_FINAL.get(config, ())))
    out.update(zip(TEST16_STEP_MODES, TEST16_STEP_3L.get(config, ())))
    return out
