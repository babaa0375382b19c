"""GPU vs CPU parity over every case in tests/cases.py whose kind (and branches) run on the
GPU: forward output, dx and every parameter gradient, within a per-kind tolerance."""

import numpy as np
import pytest

wgpu = pytest.importorskip("wgpu")
if wgpu.gpu.request_adapter_sync(power_preference="high-performance") is None:
    pytest.skip("no wgpu adapter on this machine", allow_module_level=True)

from loomdist.kernels.gpu import layers as gpu_layers  # noqa: E402
from loomdist.kernels.gpu.array import to_gpu  # noqa: E402
from loomdist.kernels.gpu.stream import Stream  # noqa: E402
from loomdist.layers import module_of  # noqa: E402
from tests.cases import CASES, Case  # noqa: E402
from tests.gpu._grids import LN, RMS, SW, D, P  # noqa: E402

pytestmark = pytest.mark.gpu

# float32 on both sides; the GPU sums in another order (tree reductions, tiled GEMM).
# (rtol, atol) per kind; kinds without an entry use DEFAULT.
TOLERANCE = {
    "dense": (1e-5, 1e-5),
    "layer_norm": (1e-4, 1e-5),
    "rms_norm": (1e-4, 1e-5),
    "swiglu": (1e-4, 1e-5),
    "parallel": (1e-4, 1e-5),
    "conv2d": (1e-4, 1e-4),  # kernel gradients sum batch*oh*ow products
    "multi_head_attention": (1e-4, 1e-4),  # gradients chain several reductions
    "rnn": (1e-4, 1e-5),
    "lstm": (1e-4, 1e-5),
    "softmax": (1e-4, 1e-5),
}
DEFAULT = (1e-4, 1e-4)
# The shared cases put softmax inside their nested/2-D scatter parallels; these run the same
# shapes with GPU kinds only, so the nesting and scatter paths are covered on every branch.
EXTRA = [
    Case("gpu_parallel_nested", P((P((D(6, 3, "tanh"), D(6, 3, "relu")), "add"),
                                   P((D(6, 2, "sigmoid"), LN(6), SW(3, 2)), "concat")),
                                  "concat"), 2, 6),
    Case("gpu_parallel_scatter_2d", P((D(6, 4, "tanh"), RMS(3), D(6, 2, "linear")),
                                      "grid_scatter", 2, 2, 1,
                                      ((0, 1, 1, 0), (1, 0, 0, 0), (2, 1, 0, 0))), 2, 6),
    # more than 64 rows: parameter gradients go through chunked partial sums
    Case("gpu_dense_tall", D(5, 4, "tanh"), 200, 5),
    Case("gpu_layer_norm_tall", LN(6), 150, 6),
    Case("gpu_rms_norm_tall", RMS(4), 70, 8),
    Case("gpu_swiglu_tall", SW(4, 6), 40, 8),
]
GPU_CASES = [c for c in CASES if gpu_layers.runs_on_gpu(c.spec)] + EXTRA


def _random_params(case, rng):
    """The layer's own init, with zero-initialised vectors made random so they matter."""
    params = module_of(case.spec).init(case.spec, np.random.default_rng(1))
    return {k: (v + rng.standard_normal(v.shape).astype(np.float32) * 0.5
                if v.ndim == 1 else v) for k, v in params.items()}


def _cpu_and_gpu(case):
    rng = np.random.default_rng(7)
    params, x = _random_params(case, rng), case.input(3)
    module = module_of(case.spec)
    y, cache = module.forward(case.spec, params, x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, grads = module.backward(case.spec, params, cache, dy)
    s = Stream()
    gp = {k: to_gpu(v) for k, v in params.items()}
    gmod = gpu_layers.gpu_module(case.kind)
    yg, gcache = gmod.forward(s, case.spec, gp, to_gpu(x))
    dxg, gg = gmod.backward(s, case.spec, gp, gcache, to_gpu(dy))
    names = sorted(grads)
    got = s.read(yg, dxg, *[gg[k] for k in names])
    return [y, dx, *[grads[k] for k in names]], got, ["y", "dx", *names]


def test_gpu_cases_cover_the_gpu_kinds():
    kinds = {c.kind for c in GPU_CASES}
    assert {"dense", "layer_norm", "rms_norm", "swiglu", "parallel"} <= kinds
    assert kinds <= set(gpu_layers.supported())


@pytest.mark.parametrize("case", GPU_CASES, ids=lambda c: c.name)
def test_forward_and_backward_match_cpu(case):
    rtol, atol = TOLERANCE.get(case.kind, DEFAULT)
    want, got, names = _cpu_and_gpu(case)
    for name, w, g in zip(names, want, got):
        assert g.shape == np.shape(w), name
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"{case.name}: {name}")


def test_every_case_runs_on_the_gpu():
    """Issue 6's parity covers every case of tests/cases.py: no kind may fall off the GPU."""
    missing = [c.name for c in CASES if not gpu_layers.runs_on_gpu(c.spec)]
    assert not missing, f"cases without a GPU path: {missing}"


def _backward_gemms(case, need_dx: bool, monkeypatch) -> tuple:
    """(GEMMs recorded, dx, grads read back) of one GPU backward of `case`."""
    rng = np.random.default_rng(7)
    params, x = _random_params(case, rng), case.input(3)
    s = Stream()
    gp = {k: to_gpu(v) for k, v in params.items()}
    y, cache = gpu_layers.gpu_module(case.kind).forward(s, case.spec, gp, to_gpu(x))
    dy = to_gpu(rng.standard_normal(y.shape).astype(np.float32))
    calls, real = [], Stream.gemm
    with monkeypatch.context() as m:
        m.setattr(Stream, "gemm", lambda self, *a, **k: calls.append(a) or real(self, *a, **k))
        dx, grads = gpu_layers.backward(s, case.spec, gp, cache, dy, need_dx)
    names = sorted(grads)
    got = s.read(*[grads[k] for k in names])
    return len(calls), dx, dict(zip(names, got))


@pytest.mark.parametrize("case", GPU_CASES, ids=lambda c: c.name)
def test_backward_without_dx_gives_the_same_gradients(case, monkeypatch):
    """need_dx=False (a training step's first layer): no dx, the same parameter gradients,
    and one GEMM or more fewer where the module skips dx."""
    n_full, dx_full, full = _backward_gemms(case, True, monkeypatch)
    n_skip, dx_skip, skip = _backward_gemms(case, False, monkeypatch)
    assert dx_full is not None and dx_skip is None
    assert skip.keys() == full.keys()
    for k in full:
        np.testing.assert_allclose(skip[k], full[k], rtol=1e-6, atol=1e-7, err_msg=k)
    if gpu_layers.skips_dx(gpu_layers.gpu_module(case.kind)) and n_full:
        assert n_skip < n_full, f"{case.name}: {n_skip} GEMMs without dx, {n_full} with"


def test_the_gemm_kinds_skip_dx():
    """The kinds whose dx is a GEMM of their own skip it; rnn/lstm/norms/softmax compute dx
    inside their fused backward kernels and keep it."""
    skipping = {k for k in gpu_layers.supported() if gpu_layers.skips_dx(gpu_layers.gpu_module(k))}
    assert {"dense", "conv2d", "multi_head_attention", "swiglu", "parallel"} <= skipping
