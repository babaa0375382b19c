"""A grid of conv2d, MHA (with LOOM's post-add residual), lstm, rnn and softmax trained on
the wgpu backend gives the CPU's losses, gradients and weights."""

import numpy as np
import pytest

wgpu = pytest.importorskip("wgpu")
if wgpu.gpu.request_adapter_sync(power_preference="high-performance") is None:
    pytest.skip("no wgpu adapter on this machine", allow_module_level=True)

from loomdist.layers import LAYERS  # noqa: E402
from loomdist.network import Network  # noqa: E402
from loomdist.optim import Optimizer  # noqa: E402
from loomdist.train import train_step  # noqa: E402
from loomdist.train_config import TrainingConfig  # noqa: E402

pytestmark = pytest.mark.gpu
RTOL, ATOL = 1e-4, 2e-5  # float32 on both sides, different summation orders
L = {k: m.Spec for k, m in LAYERS.items()}


def _network(backend: str, softmax) -> Network:
    specs = [L["conv2d"](6, 6, 1, 2, 3, 1, 1, "tanh"), L["dense"](72, 16, "leaky_relu"),
             L["multi_head_attention"](8, 2, 2), L["multi_head_attention"](8, 2, 2),
             L["lstm"](8, 4, 2), L["rnn"](4, 6, 2), L["dense"](12, 6, "tanh"), softmax]
    net = Network(0, 2, 2, 2, batch_size=3, backend=backend)
    for i, spec in enumerate(specs):
        net.set_layer(*net.coords(i), spec, rng=i)
    return net


@pytest.mark.parametrize("softmax,loss", [
    (L["softmax"]("grid", rows=2, cols=3), "cross_entropy"),  # fused softmax + CE
    (L["softmax"]("entmax", entmax_alpha=1.5), "mse"),
    (L["softmax"]("adaptive", 0.8, adaptive_clusters=((0, 3), (1, 2, 5)), extended=True), "mse"),
], ids=["grid_ce", "entmax_mse", "adaptive_mse"])
def test_training_steps_match_cpu(softmax, loss):
    cfg = TrainingConfig(optimizer="adam", loss_type=loss)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 36)).astype(np.float32)
    t = np.abs(rng.standard_normal((3, 6))).astype(np.float32)
    nets = [_network(b, softmax) for b in ("cpu", "wgpu")]
    history = [[train_step(n, opt, cfg, x, t, 0.01) for _ in range(3)]
               for n, opt in ((n, Optimizer(cfg.optim_config())) for n in nets)]
    np.testing.assert_allclose(np.array(history[1]), np.array(history[0]), rtol=RTOL)
    want, got = dict(nets[0].parameters()), dict(nets[1].parameters())
    assert want.keys() == got.keys()
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=RTOL, atol=ATOL, err_msg=str(k))
