"""Network on the wgpu backend: training steps, passes and state transfer match the CPU."""

import numpy as np
import pytest

wgpu = pytest.importorskip("wgpu")
if wgpu.gpu.request_adapter_sync(power_preference="high-performance") is None:
    pytest.skip("no wgpu adapter on this machine", allow_module_level=True)

from loomdist.kernels.gpu.runner import GpuLayer  # noqa: E402
from loomdist.kernels.gpu.stream import Stream  # noqa: E402
from loomdist.network import Layer, Network  # noqa: E402
from loomdist.optim import Optimizer  # noqa: E402
from loomdist.train import train_step  # noqa: E402
from loomdist.train_config import TrainingConfig  # noqa: E402
from tests.gpu._grids import LN, SW, D, batch, mixed_network  # noqa: E402

pytestmark = pytest.mark.gpu
RTOL, ATOL = 1e-4, 2e-5  # float32 on both sides, different summation orders
OPTIMIZERS = [dict(optimizer="sgd"), dict(optimizer="momentum", nesterov=True),
              dict(optimizer="momentum", dampening=0.2), dict(optimizer="adam"),
              dict(optimizer="adamw", weight_decay=0.05), dict(optimizer="rmsprop"),
              dict(optimizer="rmsprop", rms_momentum=0.5)]


def _train(backend: str, cfg: TrainingConfig, steps: int = 2):
    net = mixed_network(backend)
    opt = Optimizer(cfg.optim_config())
    x, t = batch()
    history = [train_step(net, opt, cfg, x, t, 0.01) for _ in range(steps)]
    return net, opt, history


def _assert_same_weights(a, b):
    pa, pb = dict(a.parameters()), dict(b.parameters())
    assert pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_allclose(pb[k], pa[k], rtol=RTOL, atol=ATOL, err_msg=str(k))


@pytest.mark.parametrize("opts", OPTIMIZERS, ids=lambda o: "-".join(map(str, o.values())))
def test_training_steps_give_the_cpu_weights(opts):
    cfg = TrainingConfig(**opts, gradient_clip=1.0 if opts["optimizer"] == "sgd" else 0.0)
    cpu, _, h_cpu = _train("cpu", cfg)
    gpu, _, h_gpu = _train("wgpu", cfg)
    np.testing.assert_allclose(np.array(h_gpu), np.array(h_cpu), rtol=RTOL)
    _assert_same_weights(cpu, gpu)


def test_cross_entropy_step_matches_cpu():
    cfg = TrainingConfig(optimizer="adam", loss_type="cross_entropy")
    x, t = batch()
    t = np.abs(t)  # positive targets: every term of LOOM's cross-entropy counts
    nets = [mixed_network(b) for b in ("cpu", "wgpu")]
    losses = [train_step(n, Optimizer(cfg.optim_config()), cfg, x, np.abs(t), 0.01)[0]
              for n in nets]
    np.testing.assert_allclose(losses[1], losses[0], rtol=RTOL)
    _assert_same_weights(*nets)


def test_a_training_step_reads_back_once(monkeypatch):
    net = mixed_network("gpu")
    cfg = TrainingConfig(optimizer="adam")
    calls = []
    real = Stream.read
    monkeypatch.setattr(Stream, "read", lambda self, *a: calls.append(len(a)) or real(self, *a))
    train_step(net, Optimizer(cfg.optim_config()), cfg, *batch(), 0.01)
    assert calls == [2]  # loss and the squared gradient norm, nothing else


def _pre_ln(backend):
    """LayerNorm -> SwiGLU -> dense: a LayerNorm opening the network starts no residual."""
    net = Network(0, 1, 1, 3, batch_size=4, backend=backend)
    for i, spec in enumerate([LN(6), SW(3, 2), D(6, 3, "tanh")]):
        net.set_layer(0, 0, i, spec, rng=i)
    return net


@pytest.mark.parametrize("make", [mixed_network, _pre_ln], ids=["mixed", "pre_ln"])
def test_forward_backward_and_gradients_match_cpu(make):
    cpu, gpu = make("cpu"), make("gpu")
    x, _ = batch(1)
    dy = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    outs = [(n.forward(x), n.backward(dy), n.activations()) for n in (cpu, gpu)]
    for want, got in zip(outs[0][:2], outs[1][:2]):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    for want, got in zip(outs[0][2], outs[1][2]):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    gc, gg = dict(cpu.gradients()), dict(gpu.gradients())
    assert gc.keys() == gg.keys()
    for k in gc:
        np.testing.assert_allclose(gg[k], gc[k], rtol=RTOL, atol=ATOL, err_msg=str(k))


def test_flat_loom_input_and_backward_accumulate_like_cpu():
    cpu, gpu = mixed_network("cpu", batch=2), mixed_network("gpu", batch=2)
    x = np.arange(12, dtype=np.float32) / 10
    dy = np.ones(6, np.float32)
    for net in (cpu, gpu):
        assert net.forward(x).shape == (6,)
        net.backward(dy)
        net.backward(dy)  # accumulates, as LOOM does per call
    np.testing.assert_allclose(gpu.grad((0, 0, 0, "kernel")), cpu.grad((0, 0, 0, "kernel")),
                               rtol=RTOL, atol=ATOL)


def _whole_buffer_net(backend: str) -> Network:
    from loomdist.layers import LAYERS
    mha, sm = LAYERS["multi_head_attention"].Spec, LAYERS["softmax"].Spec
    net = Network(0, 1, 1, 3, batch_size=3, backend=backend)
    for i, spec in enumerate([D(6, 8, "tanh"), mha(4, 2), sm("temperature", 0.6)]):
        net.set_layer(0, 0, i, spec, rng=i)
    return net


def test_flat_input_runs_mha_and_softmax_on_the_whole_buffer_like_cpu():
    """LOOM's flat layout: MHA sees one sequence, Softmax one distribution (whole_buffer)."""
    cpu, gpu = _whole_buffer_net("cpu"), _whole_buffer_net("gpu")
    x = np.random.default_rng(5).standard_normal(18).astype(np.float32)
    dy = np.random.default_rng(6).standard_normal(24).astype(np.float32)
    outs = [(n.forward(x), n.backward(dy)) for n in (cpu, gpu)]
    assert abs(outs[0][0].sum() - 1) < 1e-5  # one distribution over all three samples
    for want, got in zip(*outs):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    gc, gg = dict(cpu.gradients()), dict(gpu.gradients())
    for k in gc:
        np.testing.assert_allclose(gg[k], gc[k], rtol=RTOL, atol=ATOL, err_msg=str(k))
    per_sample = gpu.forward(x.reshape(3, 6))
    np.testing.assert_allclose(per_sample.sum(axis=1), 1, rtol=1e-5)


def test_to_cpu_hands_back_weights_and_optimizer_state():
    cfg = TrainingConfig(optimizer="adam")
    cpu, opt_cpu, _ = _train("cpu", cfg, steps=3)
    gpu, opt_gpu, _ = _train("wgpu", cfg, steps=1)
    gpu.to("cpu")
    assert gpu.backend == "cpu" and gpu.runner is None
    assert all(type(s) is Layer for s in gpu.layers)
    x, t = batch()
    for _ in range(2):  # continue on the CPU with the state the GPU built
        train_step(gpu, opt_gpu, cfg, x, t, 0.01)
    assert opt_gpu.state["t"] == opt_cpu.state["t"] == 3
    _assert_same_weights(cpu, gpu)


def test_to_gpu_continues_from_cpu_state_and_keeps_model_files_equal():
    cfg = TrainingConfig(optimizer="momentum")
    ref, _, _ = _train("cpu", cfg, steps=2)
    net = mixed_network("cpu")
    opt = Optimizer(cfg.optim_config())
    x, t = batch()
    train_step(net, opt, cfg, x, t, 0.01)
    net.to("gpu")
    assert all(isinstance(s, GpuLayer) for s in net.layers)
    train_step(net, opt, cfg, x, t, 0.01)
    _assert_same_weights(ref, net)
    text = net.save_model_to_string("m")  # reads the device lazily
    assert text == net.to("cpu").save_model_to_string("m")


def test_set_layer_on_the_gpu_uploads_the_new_weights():
    net = mixed_network("gpu")
    kernel = np.full((6, 8), 0.1, np.float32)
    net.set_layer(0, 0, 0, net.get_layer(0, 0, 0), {"kernel": kernel, "biases": np.zeros(8)})
    x, _ = batch()
    cpu = mixed_network("cpu")
    cpu.set_layer(0, 0, 0, cpu.get_layer(0, 0, 0), {"kernel": kernel, "biases": np.zeros(8)})
    np.testing.assert_allclose(net.forward(x), cpu.forward(x), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(net.param((0, 0, 0, "kernel")), kernel)


@pytest.mark.skipif("softmax" not in __import__("loomdist.kernels.gpu.layers",
                                                fromlist=["supported"]).supported(),
                    reason="the GPU softmax module is not on this branch")
@pytest.mark.parametrize("variant", [dict(), dict(variant="temperature", temperature=0.5),
                                     dict(variant="grid", rows=2, cols=2)],
                         ids=["standard", "temperature", "grid"])
def test_fused_softmax_cross_entropy_step_matches_cpu(variant):
    from loomdist.layers import LAYERS
    from loomdist.network import Network
    from tests.gpu._grids import D
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    t = np.eye(4, dtype=np.float32)[[0, 2, 1, 3]]
    cfg = TrainingConfig(optimizer="adam", loss_type="cross_entropy")
    results = []
    for backend in ("cpu", "gpu"):
        net = Network(0, 1, 1, 3, batch_size=4, backend=backend)
        for i, spec in enumerate([D(6, 8, "tanh"), D(8, 4, "linear"),
                                  LAYERS["softmax"].Spec(**variant)]):
            net.set_layer(0, 0, i, spec, rng=i)
        opt = Optimizer(cfg.optim_config())
        results.append(([train_step(net, opt, cfg, x, t, 0.01) for _ in range(2)], net))
    np.testing.assert_allclose(np.array(results[1][0]), np.array(results[0][0]), rtol=RTOL)
    _assert_same_weights(results[0][1], results[1][1])


class _Events:
    def __init__(self):
        self.events = []

    def on_forward(self, e):
        self.events.append(e)

    def on_backward(self, e):
        self.events.append(e)


def test_layer_observers_see_the_cpu_events_on_the_gpu():
    from loomdist.tween.observers import attach
    x, _ = batch(1)
    dy = np.ones((4, 3), np.float32)
    seen = []
    for backend in ("cpu", "gpu"):
        net, obs = mixed_network(backend), _Events()
        attach(net, obs)
        net.forward(x)
        net.backward(dy)
        seen.append(obs.events)
    cpu, gpu = seen
    assert [(e.type, e.layer_idx) for e in gpu] == [(e.type, e.layer_idx) for e in cpu]
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(b.output, a.output, rtol=RTOL, atol=ATOL)


def test_in_place_parameter_edits_reach_the_device():
    cpu, gpu = mixed_network("cpu"), mixed_network("gpu")
    for net in (cpu, gpu):
        net.param((0, 0, 0, "kernel"))[...] *= 2  # LOOM users edit the live view
    x, _ = batch()
    np.testing.assert_allclose(gpu.forward(x), cpu.forward(x), rtol=RTOL, atol=ATOL)


def test_parameter_references_stay_current_after_a_step():
    net = mixed_network("gpu")
    kernel = net.param((0, 0, 0, "kernel"))
    before = kernel.copy()
    cfg = TrainingConfig(optimizer="sgd")
    train_step(net, Optimizer(cfg.optim_config()), cfg, *batch(), 0.1)
    assert net.param((0, 0, 0, "kernel")) is kernel
    assert not np.array_equal(kernel, before)


def test_trainer_checkpoint_and_resume_on_the_gpu_match_the_cpu(tmp_path):
    from loomdist.train import Trainer
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 6)).astype(np.float32)
    t = rng.standard_normal((8, 3)).astype(np.float32)
    cfg = dict(optimizer="adam", batch_size=4, shuffle=False, learning_rate=0.01)
    ref = mixed_network("cpu")
    Trainer(ref, TrainingConfig(epochs=2, **cfg)).fit(x, t)
    Trainer(mixed_network("gpu"), TrainingConfig(epochs=1, **cfg), tmp_path).fit(x, t)
    resumed = mixed_network("gpu")  # fresh weights: the checkpoint must overwrite them
    Trainer(resumed, TrainingConfig(epochs=2, **cfg), tmp_path).fit(x, t, resume=True)
    _assert_same_weights(ref, resumed)


def test_a_float64_network_moves_to_the_gpu_as_float32():
    net = mixed_network("cpu").astype(np.float64)
    net.to("gpu")
    assert net.dtype == np.float32
    assert all(a.dtype == np.float32 for _, a in net.parameters())
    ref = mixed_network("cpu")
    x, _ = batch()
    np.testing.assert_allclose(net.forward(x), ref.forward(x), rtol=RTOL, atol=ATOL)


def test_a_training_step_skips_the_first_layers_dx(monkeypatch):
    """Nobody reads dL/dx of a training step's input: a dense stack of L layers records L
    forward GEMMs and 2L - 1 backward GEMMs (the first layer's dx is skipped), and the step
    still gives the CPU's weights."""
    def stack(backend):
        net = Network(0, 1, 1, 3, batch_size=4, backend=backend)
        for i, (n_in, n_out) in enumerate([(6, 8), (8, 8), (8, 3)]):
            net.set_layer(0, 0, i, D(n_in, n_out, "tanh"), rng=i)
        return net

    cfg = TrainingConfig(optimizer="sgd")
    cpu, gpu = stack("cpu"), stack("wgpu")
    train_step(cpu, Optimizer(cfg.optim_config()), cfg, *batch(), 0.01)
    calls, real = [], Stream.gemm
    monkeypatch.setattr(Stream, "gemm",
                        lambda self, *a, **k: calls.append(a) or real(self, *a, **k))
    train_step(gpu, Optimizer(cfg.optim_config()), cfg, *batch(), 0.01)
    assert len(calls) == 3 + (2 * 3 - 1)
    _assert_same_weights(cpu, gpu)


def test_a_target_of_the_wrong_size_is_a_shape_error_on_the_gpu():
    from loomdist.errors import ShapeError
    net, cfg = mixed_network("wgpu"), TrainingConfig(optimizer="sgd")
    x, t = batch()
    with pytest.raises(ShapeError, match=r"train: the target has 8 values, the network's "
                                         r"output has 12 \(4 x 3\)"):
        train_step(net, Optimizer(cfg.optim_config()), cfg, x, t[:, :2], 0.01)
