"""Error branches of the GPU backend, plus Stream and GpuArray edge cases."""

import numpy as np
import pytest

wgpu = pytest.importorskip("wgpu")
if wgpu.gpu.request_adapter_sync(power_preference="high-performance") is None:
    pytest.skip("no wgpu adapter on this machine", allow_module_level=True)

from loomdist.errors import ConfigError, ShapeError, UnsupportedLayerError  # noqa: E402
from loomdist.kernels.gpu import layers as registry  # noqa: E402
from loomdist.kernels.gpu import ops  # noqa: E402
from loomdist.kernels.gpu.array import empty, to_gpu, zeros  # noqa: E402
from loomdist.kernels.gpu.device import get_device  # noqa: E402
from loomdist.kernels.gpu.stream import Stream, pack_params  # noqa: E402
from loomdist.network import Network  # noqa: E402
from tests.gpu._grids import LN, D, P, batch, mixed_network  # noqa: E402

pytestmark = pytest.mark.gpu


def test_kind_without_gpu_module_fails_at_to_gpu(monkeypatch):
    net = mixed_network("cpu")
    monkeypatch.setattr(registry, "supported", lambda: ["layer_norm"])
    with pytest.raises(UnsupportedLayerError,
                       match=r"layer \(0, 0, 0\) \(dense\) on wgpu: layer kind 'dense' has no "
                             r"module for the wgpu backend"):
        net.to("gpu")
    assert net.backend == "cpu" and net.runner is None


def test_parallel_branch_without_gpu_module_is_named(monkeypatch):
    net = mixed_network("gpu")
    before = net.layers[0]
    monkeypatch.setattr(registry, "supported", lambda: ["parallel", "dense"])
    spec = P((D(6, 8), P((D(6, 8), LN(6)), "add")), "add")
    with pytest.raises(UnsupportedLayerError,
                       match=r"\(parallel\) on wgpu branch 1 branch 1: layer kind 'layer_norm'"):
        net.set_layer(0, 0, 0, spec)
    assert net.layers[0] is before


def test_unknown_backend_is_a_config_error():
    with pytest.raises(ConfigError, match=r"Network.to: unknown backend 'tpu'; use 'cpu' or"):
        Network(0, 1, 1, 1, backend="tpu")


def test_gpu_keeps_float32_parameters():
    net = mixed_network("gpu")
    with pytest.raises(ConfigError, match=r"wgpu backend keeps float32 parameters; call "
                                          r"net.to\('cpu'\)"):
        net.astype(np.float64)


def test_backward_before_forward_on_the_gpu():
    with pytest.raises(ConfigError, match=r"Network.backward: no forward pass recorded"):
        mixed_network("gpu").backward(np.zeros(12, np.float32))


def test_backward_gradient_of_the_wrong_size_on_the_gpu():
    net = mixed_network("gpu")
    net.forward(batch()[0])
    with pytest.raises(ShapeError, match=r"gradient has 5 values, the last output has 12"):
        net.backward(np.zeros(5, np.float32))


def test_activations_before_forward_on_the_gpu():
    with pytest.raises(ConfigError, match=r"Network.activations: no forward pass recorded"):
        mixed_network("gpu").activations()


def test_buffer_over_the_adapter_limit_names_limit_and_size(monkeypatch):
    dev = get_device()
    monkeypatch.setitem(dev.limits, "max-buffer-size", 1000)
    with pytest.raises(ConfigError, match=r"gpu.to_gpu: buffer too large for the adapter "
                                          r"\(4000 bytes > max-buffer-size = 1000"):
        to_gpu(np.zeros(1000, np.float32))
    with pytest.raises(ConfigError, match=r"layer \(0, 0, 0\) kernel: buffer too large"):
        net = Network(0, 1, 1, 1, backend="gpu")
        net.set_layer(0, 0, 0, D(50, 40))


def test_missing_feature_is_named():
    dev = get_device()
    with pytest.raises(ConfigError, match=r"lacks the wgpu feature 'no-such-feature'"):
        dev.require_feature("no-such-feature", "test")
    for feature in dev.features:
        dev.require_feature(feature, "test")


def test_negative_param_needs_an_explicit_i32():
    with pytest.raises(ConfigError, match=r"param off=-1 is negative; pass np.int32\(-1\)"):
        pack_params({"off": -1})
    words = pack_params({"a": 3, "b": 0.5, "c": np.int32(-2)})
    assert words.tolist() == [3, int(np.float32(0.5).view(np.uint32)),
                              int(np.int32(-2).view(np.uint32)), 0]


def test_reshape_keeps_the_number_of_values():
    a = zeros((2, 6))
    assert a.reshape(3, -1).shape == (3, 4) and a.reshape((12,)).buffer is a.buffer
    with pytest.raises(ShapeError, match=r"cannot view \(2, 6\) \(12 values\) as \(5, 2\)"):
        a.reshape(5, 2)


def test_read_copy_and_empty_arrays():
    s = Stream()
    a, b = to_gpu(np.arange(10, dtype=np.float32)), zeros((4,))
    s.copy(a, b, count=3, src_offset=5, dst_offset=1)
    got = s.read(b, empty((0, 3)), a)
    np.testing.assert_array_equal(got[0], [0, 5, 6, 7])
    assert got[1].shape == (0, 3)
    np.testing.assert_array_equal(got[2], np.arange(10))
    assert a.numpy().tolist() == list(range(10))


def test_dispatch_past_the_workgroup_limit_uses_a_second_dimension(monkeypatch):
    dev = get_device()
    monkeypatch.setitem(dev.limits, "max-compute-workgroups-per-dimension", 3)
    s = Stream()
    assert s.groups(2000) == (3, 3, 1)
    x = np.arange(2000, dtype=np.float32)
    out = ops.add(s, to_gpu(x), to_gpu(x))
    np.testing.assert_array_equal(s.read(out)[0], 2 * x)


def test_gemm_accumulates_and_handles_empty_inner_dimension():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 7), np.float32), rng.standard_normal((7, 3), np.float32)
    c0 = rng.standard_normal((5, 3), np.float32)
    s = Stream()
    c, z = to_gpu(c0), to_gpu(c0)
    s.gemm(to_gpu(a), to_gpu(b), c, 5, 3, 7, accumulate=True)
    s.gemm(empty((5, 0)), empty((0, 3)), z, 5, 3, 0)
    got_c, got_z = s.read(c, z)
    np.testing.assert_allclose(got_c, c0 + a @ b, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got_z, np.zeros((5, 3)))
