"""GPU losses, optimizer updates, clipping and the NaN count against loomdist's CPU code."""

import numpy as np
import pytest

wgpu = pytest.importorskip("wgpu")
if wgpu.gpu.request_adapter_sync(power_preference="high-performance") is None:
    pytest.skip("no wgpu adapter on this machine", allow_module_level=True)

from loomdist import losses as cpu_losses  # noqa: E402
from loomdist import optim as cpu_optim  # noqa: E402
from loomdist.kernels.gpu import losses, optim  # noqa: E402
from loomdist.kernels.gpu.array import to_gpu  # noqa: E402
from loomdist.kernels.gpu.stream import Stream  # noqa: E402

pytestmark = pytest.mark.gpu
RTOL, ATOL = 1e-5, 1e-6

CONFIGS = [
    cpu_optim.OptimConfig("sgd"),
    cpu_optim.OptimConfig("momentum", momentum=0.8, dampening=0.1),
    cpu_optim.OptimConfig("momentum", nesterov=True),
    cpu_optim.OptimConfig("adam", weight_decay=0.01),
    cpu_optim.OptimConfig("adamw", weight_decay=0.05),
    cpu_optim.OptimConfig("rmsprop"),
    cpu_optim.OptimConfig("rmsprop", rms_momentum=0.5),
]


@pytest.mark.parametrize("name", ["mse", "cross_entropy"])
def test_loss_and_grad_match_cpu(name):
    rng = np.random.default_rng(0)
    out = rng.uniform(0, 1, (4, 7)).astype(np.float32)
    target = (rng.uniform(0, 1, (4, 7)) > 0.6).astype(np.float32)
    loss, grad = cpu_losses.loss_and_grad(name, out, target)
    s = Stream()
    gl, gg = losses.loss_and_grad(s, name, to_gpu(out), to_gpu(target))
    got_loss, got_grad = s.read(gl, gg)
    np.testing.assert_allclose(got_loss[0], loss, rtol=RTOL)
    np.testing.assert_allclose(got_grad, grad, rtol=RTOL, atol=ATOL)


def test_fused_softmax_ce_matches_cpu():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((3, 8)).astype(np.float32) * 3
    target = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 6)].reshape(3, 8)
    loss, probs, grad = cpu_losses.fused_softmax_ce(logits, target, 0.7, 4)
    s = Stream()
    out = s.read(*losses.fused_softmax_ce(s, to_gpu(logits), to_gpu(target), 0.7, 4))
    np.testing.assert_allclose(out[0][0], loss, rtol=RTOL)
    np.testing.assert_allclose(out[1], probs, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(out[2], grad, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.name}-{c.nesterov}-{c.rms_momentum}")
def test_three_updates_match_cpu_optimizer(cfg):
    rng = np.random.default_rng(2)
    keys = [(0, 0, 0, "kernel"), (0, 0, 0, "biases")]
    w = {k: rng.standard_normal((5, 3) if k[3] == "kernel" else 3).astype(np.float32)
         for k in keys}
    cpu, gpu = cpu_optim.Optimizer(cfg), optim.GpuOptimizer(cfg)
    gw = {k: to_gpu(v) for k, v in w.items()}
    for t in range(1, 4):
        g = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in w.items()}
        cpu.step(list(w.items()), g.items(), 0.05)
        s = Stream()
        gpu.step(s, list(gw.items()), {k: to_gpu(v) for k, v in g.items()}, 0.05, t)
        s.submit()
    s = Stream()
    for k, got in zip(keys, s.read(*[gw[k] for k in keys])):
        np.testing.assert_allclose(got, w[k], rtol=1e-5, atol=1e-6, err_msg=str(k))


@pytest.mark.parametrize("max_norm", [0.0, 1.0, 100.0])
def test_clip_global_norm_matches_cpu(max_norm):
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(n).astype(np.float32) for n in (7, 300)]
    gg = [to_gpu(g) for g in grads]
    norm = cpu_optim.clip_global_norm(grads, max_norm)
    s = Stream()
    sq = optim.clip_global_norm(s, gg, max_norm)
    out = s.read(sq, *gg)
    np.testing.assert_allclose(np.sqrt(out[0][0]), norm, rtol=RTOL)
    for want, got in zip(grads, out[1:]):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_count_nonfinite_counts_nan_and_inf():
    x = np.array([1.0, np.nan, -np.inf, 3.0, np.inf, 0.0, -0.0], np.float32)
    s = Stream()
    (count,) = s.read(losses.count_nonfinite(s, to_gpu(np.tile(x, 100))))
    assert count[0] == 300
