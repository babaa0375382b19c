"""Small networks of every tweenable kind for the tween tests."""

import numpy as np

from loomdist.layers import (
    conv2d,
    dense,
    layer_norm,
    lstm,
    multi_head_attention,
    rms_norm,
    rnn,
    softmax,
    swiglu,
)
from loomdist.network import Network

SPECS = {
    "dense": ([dense.Spec(6, 5, "tanh"), dense.Spec(5, 3, "sigmoid")], 6),
    "conv2d": ([conv2d.Spec(4, 4, 1, 2, 3, 1, 0, "leaky_relu"), dense.Spec(8, 3, "sigmoid")],
               16),
    "rnn": ([dense.Spec(8, 8, "leaky_relu"), rnn.Spec(4, 4, 2), dense.Spec(8, 3, "sigmoid")],
            8),
    "lstm": ([dense.Spec(8, 8, "leaky_relu"), lstm.Spec(4, 4, 2), dense.Spec(8, 3, "sigmoid")],
             8),
    "multi_head_attention": ([multi_head_attention.Spec(8, 2), dense.Spec(8, 3, "sigmoid")],
                             8),
    "layer_norm": ([dense.Spec(6, 8, "relu"), layer_norm.Spec(8), dense.Spec(8, 3, "sigmoid")],
                   6),
    "rms_norm": ([dense.Spec(6, 8, "relu"), rms_norm.Spec(8), dense.Spec(8, 3, "sigmoid")], 6),
    "swiglu": ([dense.Spec(6, 8, "softplus"), swiglu.Spec(8, 6), dense.Spec(8, 3, "sigmoid")],
               6),
    "softmax": ([dense.Spec(6, 3, "leaky_relu"), softmax.Spec()], 6),
}


def build(kind: str, seed: int = 0):
    """(network, input) for the case `kind`."""
    specs, n_in = SPECS[kind]
    rng = np.random.default_rng(seed)
    net = Network(n_in, 1, 1, len(specs))
    for i, s in enumerate(specs):
        net.set_layer(0, 0, i, s, rng=rng)
    x = rng.uniform(-1, 1, n_in).astype(np.float32)
    return net, x


def snapshot(net):
    return [{k: v.copy() for k, v in s.params.items()} for s in net.layers]
