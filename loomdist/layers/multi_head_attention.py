"""Multi-head causal self-attention with RoPE (LOOM's MHA), batch-aware, true gradients."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..activations import check_activation
from ..errors import ConfigError, ShapeError
from ..kernels.cpu import attention as ka
from ._common import buffer_rows, concat_rows, positive_int, xavier

TYPE = "multi_head_attention"
WEIGHT_KEYS = ("q_weights", "k_weights", "v_weights", "output_weight", "q_bias", "k_bias",
               "v_bias", "output_bias")  # order inside LOOM's weight payload
RESIDUAL = "post_add"  # LOOM adds the stored residual to the output, then stores it
LOOM_TYPE_ID = 2  # LOOM's LayerType enum value (events' LayerType)
STATS_NAME = "attention"  # LOOM's layerTypeString (events' Stats.LayerType)
ROPE_THETA = 1e6
_IN = ("q_weights", "k_weights", "v_weights")
_IN_BIAS = ("q_bias", "k_bias", "v_bias")
_MATRICES = _IN + ("output_weight",)
_BIASES = _IN_BIAS + ("output_bias",)


@dataclass(frozen=True)
class Spec:
    """Causal self-attention over sequences of `d_model` features split into `num_heads` heads.

    Each sample is its own sequence of in_features // d_model positions; on LOOM's flat
    layout (layers._common.whole_buffer) the whole buffer is one sequence, as in LOOM.
    seq_length is informational (kept for LOOM's config, 0 = infer); activation is kept for
    the config and never applied.
    """

    d_model: int
    num_heads: int
    seq_length: int = 0  # informational; the sequence length is inferred from the input
    activation: str = "relu"  # LOOM writes it but never applies it
    kind = TYPE

    def __post_init__(self):
        where = f"multi_head_attention(d_model={self.d_model}, heads={self.num_heads})"
        for name, minimum in (("d_model", 1), ("num_heads", 1), ("seq_length", 0)):
            object.__setattr__(self, name,
                               positive_int(getattr(self, name), where, name, minimum))
        if self.d_model % self.num_heads:
            raise ConfigError(f"{where}: d_model {self.d_model} is not divisible by num_heads "
                              f"{self.num_heads}; pick num_heads dividing d_model")
        if self.head_dim % 2:
            raise ConfigError(f"{where}: head_dim {self.head_dim} is odd and RoPE rotates "
                              f"pairs of features; pick d_model / num_heads even")
        object.__setattr__(self, "activation", check_activation(self.activation, where))

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    def out_features(self, in_features: int, where: str = "multi_head_attention") -> int:
        if in_features <= 0 or in_features % self.d_model:
            raise ShapeError(f"{where}: input features per sample is {in_features}, not a "
                             f"positive multiple of d_model {self.d_model}; fix the previous "
                             f"layer's output size or this layer's d_model")
        return in_features


def in_features(spec: Spec) -> int | None:
    """Per-sample input size when seq_length is set (None: any whole number of steps)."""
    return spec.seq_length * spec.d_model or None


def telemetry(spec: Spec) -> dict:
    """LOOM's blueprint facts (ExtractNetworkBlueprint): parameter count and shapes."""
    d = spec.d_model  # loomdist has no GQA: NumKVHeads = 0, so LOOM's kv dim is d_model
    shape = [spec.seq_length, d]
    return {"parameters": 4 * d * d + 4 * d, "input_shape": shape, "output_shape": shape}


def param_shapes(spec: Spec) -> dict:
    d = spec.d_model
    return {**{k: (d, d) for k in _MATRICES}, **{k: (d,) for k in _BIASES}}


def init(spec: Spec, rng: np.random.Generator) -> dict:
    """Xavier N(0, sqrt(2/(d+d))) on Q, K, V, O (drawn in that order), biases 0."""
    d = spec.d_model
    params = {k: xavier(rng, d, d, (d, d)) for k in _MATRICES}
    params.update({k: np.zeros(d, np.float32) for k in _BIASES})
    return {k: params[k] for k in WEIGHT_KEYS}


def _p(params: dict, key: str, dtype) -> np.ndarray:
    return np.asarray(params[key], dtype=dtype)


def forward(spec: Spec, params: dict, x: np.ndarray):
    """x: (batch, seq*d_model) -> y of the same shape; no activation, no residual."""
    t, d, nh = x.dtype, spec.d_model, spec.num_heads
    nb = buffer_rows(x)
    seq = x.size // (nb * d)
    x2 = np.ascontiguousarray(x).reshape(nb * seq, d)  # (rows, d)
    w_in = np.concatenate([_p(params, k, t) for k in _IN], axis=1)  # (d, 3d)
    cos, sin = ka.rope_tables(seq, spec.head_dim, t, ROPE_THETA)
    qkv = x2 @ w_in  # (rows, 3d): [Q | K | V], each [s][h*hd+i]
    ka.bias_rope(qkv, np.concatenate([_p(params, k, t) for k in _IN_BIAS]), cos, sin)
    q, k, v = (ka.heads_view(qkv, nb, nh, i, 3) for i in range(3))  # (b, h, s, hd) views
    ctx = np.empty((nb * seq, d), t)  # heads concatenated: [s][h*hd+i]
    p = ka.attention_forward(q, k, v, ka.heads_view(ctx, nb, nh))  # p: (b, h, s, s)
    y = ctx @ _p(params, "output_weight", t)
    y += _p(params, "output_bias", t)
    return y.reshape(x.shape), (x2, w_in, cos, sin, qkv, p, ctx)


def backward(spec: Spec, params: dict, cache, dy: np.ndarray):
    """dy: (batch, seq*d_model) -> dx, grads for all eight parameters (true gradients)."""
    dx, wcache = backward_input(spec, params, cache, dy)
    return dx, weight_grads(spec, params, [wcache])


def backward_input(spec: Spec, params: dict, cache, dy: np.ndarray, need_dx: bool = True):
    """backward's dx alone (None with need_dx=False: the input projection's GEMM is
    skipped); wcache (ctx, dy2, x2, dqkv), all (rows, .), for weight_grads."""
    x2, w_in, cos, sin, qkv, p, ctx = cache
    t, nh = x2.dtype, spec.num_heads
    nb = p.shape[0]
    dy2 = np.ascontiguousarray(dy, dtype=t).reshape(x2.shape)
    dctx = dy2 @ _p(params, "output_weight", t).T  # (rows, d)
    dqkv = np.empty_like(qkv)  # (rows, 3d), filled through (b, h, s, hd) views
    ka.attention_backward(*(ka.heads_view(qkv, nb, nh, i, 3) for i in range(3)), p,
                          ka.heads_view(dctx, nb, nh),
                          *(ka.heads_view(dqkv, nb, nh, i, 3) for i in range(3)))
    ka.rope_backward(dqkv, cos, sin)
    dx = (dqkv @ w_in.T).reshape(dy.shape) if need_dx else None
    return dx, (ctx, dy2, x2, dqkv)


def weight_grads(spec: Spec, params: dict, wcaches: list) -> dict:
    """All eight gradients, summed over the micro-batches of `wcaches` (backward_input's, in
    order): one GEMM over all their rows per projection."""
    ctx, dy2, x2, dqkv = concat_rows(wcaches)
    d = spec.d_model
    grads = {"output_weight": ctx.T @ dy2, "output_bias": dy2.sum(axis=0)}
    dw_in, db_in = x2.T @ dqkv, dqkv.sum(axis=0)
    for i, (wk, bk) in enumerate(zip(_IN, _IN_BIAS)):
        grads[wk] = np.ascontiguousarray(dw_in[:, i * d:(i + 1) * d])
        grads[bk] = db_in[i * d:(i + 1) * d].copy()
    return {key: grads[key] for key in WEIGHT_KEYS}


def to_config(spec: Spec, branch: bool = False) -> dict:
    return {"type": TYPE, "activation": spec.activation, "d_model": spec.d_model,
            "num_heads": spec.num_heads, "seq_length": spec.seq_length}


def from_config(cfg: dict) -> Spec:
    return Spec(cfg["d_model"], cfg["num_heads"], cfg.get("seq_length", 0),
                cfg.get("activation", "relu"))


def loom_gradients(spec: Spec, grads: dict):
    """(concat(dQW, dKW, dVW, dOW), concat(dQB, dKB, dVB, dOB)), flat; true gradients."""
    return (np.concatenate([grads[k].ravel() for k in _MATRICES]),
            np.concatenate([grads[k].ravel() for k in _BIASES]))


def init_multi_head_attention_layer(d_model: int, num_heads: int, batch_size: int,
                                    seq_length: int, activation: str | int = "relu") -> Spec:
    """LOOM README's InitMultiHeadAttentionLayer(dModel, numHeads, batchSize, seqLength).

    batch_size is accepted for LOOM compatibility and not stored (each sample is a sequence).
    """
    return Spec(d_model, num_heads, seq_length, activation)


INIT_FUNCTIONS = {"InitMultiHeadAttentionLayer": init_multi_head_attention_layer}
