"""Stream arenas: a repeated step reuses its buffers and bind groups and stays correct."""

import numpy as np
import pytest

wgpu = pytest.importorskip("wgpu")
if wgpu.gpu.request_adapter_sync(power_preference="high-performance") is None:
    pytest.skip("no wgpu adapter on this machine", allow_module_level=True)

from loomdist.errors import ShapeError  # noqa: E402
from loomdist.kernels.gpu import ops  # noqa: E402
from loomdist.kernels.gpu.array import to_gpu  # noqa: E402
from loomdist.kernels.gpu.stream import Arena, Stream  # noqa: E402
from tests.gpu._grids import batch, mixed_network  # noqa: E402

pytestmark = pytest.mark.gpu


def _step(arena, x):
    s = Stream(arena=arena)
    a = s.upload(x)
    total = s.empty(x.shape)  # zero-filled even when reused
    ops.add_into(s, a, total)
    ops.add_into(s, a, total)
    return s, s.read(total)[0]


def test_second_step_reuses_buffers_and_bind_groups_with_fresh_values():
    arena, x = Arena(), np.arange(6, dtype=np.float32)
    _step(arena, x)
    buffers, groups = list(arena.buffers), dict(arena.groups)
    _, got = _step(arena, x + 1)
    np.testing.assert_array_equal(got, 2 * (x + 1))  # cleared, not 2x + 2(x + 1)
    assert [b.buffer for b in arena.buffers] == [b.buffer for b in buffers]
    assert dict(arena.groups).keys() == groups.keys()


def test_a_step_with_other_shapes_rebuilds_from_where_it_diverges():
    arena = Arena()
    _step(arena, np.ones(6, np.float32))
    first = arena.buffers[0].buffer
    _, got = _step(arena, np.ones(10, np.float32))
    np.testing.assert_array_equal(got, np.full(10, 2.0))
    assert len(arena.buffers) == 2 and arena.buffers[0].buffer is not first


def test_bind_group_cache_is_bounded():
    arena = Arena(max_groups=2)
    s = Stream(arena=arena)
    for i in range(4):
        ops.scale(s, to_gpu(np.ones(3, np.float32)), float(i))
    s.submit()
    assert len(arena.groups) == 2


def test_training_steps_reuse_the_train_arena():
    net = mixed_network("gpu")
    from loomdist.optim import Optimizer
    from loomdist.train import train_step
    from loomdist.train_config import TrainingConfig
    cfg = TrainingConfig(optimizer="adam")
    opt = Optimizer(cfg.optim_config())
    train_step(net, opt, cfg, *batch(), 0.01)
    arena = net.runner.arena("train")
    buffers = [a.buffer for a in arena.buffers]
    train_step(net, opt, cfg, *batch(), 0.02)
    groups = len(arena.groups)
    train_step(net, opt, cfg, *batch(), 0.03)  # new lr and t: no new bind group either
    assert [a.buffer for a in arena.buffers] == buffers
    assert len(arena.groups) == groups


def test_gemm_rejects_operands_smaller_than_the_product():
    s = Stream()
    a, b, c = to_gpu(np.ones((2, 3))), to_gpu(np.ones((3, 2))), to_gpu(np.ones((2, 1)))
    with pytest.raises(ShapeError, match=r"Stream.gemm: operands \(2, 3\), \(3, 2\), \(2, 1\) "
                                         r"are too small for m=2, n=2, k=3"):
        s.gemm(a, b, c, 2, 2, 3)

