"""The modes registry: names, aliases, LOOM's presets, and every mode running a few samples."""

import numpy as np
import pytest

from loomdist.errors import ConfigError
from loomdist.tween.modes import ADAPT_MODES, MODES, TEST16_MODES, make_mode, mode_name

from .nets_tween import build, snapshot


def test_names_and_aliases():
    assert set(TEST16_MODES) | set(ADAPT_MODES) == set(MODES)
    assert mode_name("Step+BP") == "StepBP" and mode_name("STC") == "StepTweenChain"
    assert mode_name("TChain") == "StepTweenChain"
    with pytest.raises(ConfigError, match="unknown mode 'Nope'"):
        mode_name("Nope")
    net, _ = build("dense")
    with pytest.raises(ConfigError, match="unknown family"):
        make_mode("Tween", net, 3, "t99")


def test_presets_follow_loom():
    net, _ = build("dense")
    assert make_mode("StepTweenChain", net, 3, "adapt").rate == 0.02
    m = make_mode("TChain", net, 3, "t16")
    assert (m.rate, m.tween_every) == (0.15, 5)
    bp = make_mode("NormalBP", net, 3, "t16")
    assert (bp.lr, bp.epochs, bp.clip) == (0.02, 5, 1.0)
    sbp = make_mode("StepBP", net, 3, "t16")
    assert sbp.delay is not None and sbp.delay.length == net.total_layers


@pytest.mark.parametrize("name", sorted(MODES))
def test_every_mode_learns(name):
    net, x = build("dense")
    before = snapshot(net)
    family = "t16" if name in TEST16_MODES else "adapt"
    m = make_mode(name, net, 3, family)
    for k in range(40):
        xi = x if k % 2 else -x
        y = m.output(xi)
        assert y.shape == (3,)
        m.learn(xi, k % 3)
    m.flush()
    assert m.eval_output(x).shape == (3,)
    assert any(not np.array_equal(v, before[i][k]) for i, s in enumerate(net.layers)
               for k, v in s.params.items()), f"{name} changed nothing"


def test_step_bp_updates_only_loom_apply_params():
    net, x = build("lstm")
    before = snapshot(net)
    m = make_mode("StepBP", net, 3, "adapt")
    for _ in range(5):
        m.output(x)
        m.learn(x, 1)
    for k, v in net.layers[1].params.items():  # LSTM: ApplyGradients skips it
        np.testing.assert_array_equal(v, before[1][k])
    assert not np.array_equal(net.layers[0].params["kernel"], before[0]["kernel"])


def test_normal_bp_updates_only_loom_update_weights_params():
    net, x = build("conv2d")
    before = snapshot(net)
    m = make_mode("NormalBP", net, 3, "adapt")
    m.learn(x, 0)
    m.flush()
    np.testing.assert_array_equal(net.layers[0].params["kernel"], before[0]["kernel"])
    assert not np.array_equal(net.layers[1].params["kernel"], before[1]["kernel"])
    assert np.isfinite(m.last_loss) and m.buffer == []
