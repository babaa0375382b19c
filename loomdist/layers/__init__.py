"""The layer registry: LOOM's JSON type names -> layer modules, plus helpers.

A layer module defines `TYPE`, a frozen `Spec` dataclass (with `kind` and
`out_features`), `param_shapes`, `init`, `forward`, `backward`, `to_config`,
`from_config`, `loom_gradients`, `WEIGHT_KEYS`, `RESIDUAL` and `INIT_FUNCTIONS`; optionally
the pair `backward_input` / `weight_grads` (backward split so that pipeline stages compute
weight gradients once per mini-batch, engine.WeightGradStash; backward_input's
need_dx=False skips dL/dx where nothing reads it, a network's or first stage's first layer).
Nothing outside this registry branches on layer kind.
"""

from __future__ import annotations

from types import ModuleType

from ..errors import UnsupportedLayerError
from . import (
    conv2d,
    dense,
    layer_norm,
    lstm,
    multi_head_attention,
    parallel,
    rms_norm,
    rnn,
    softmax,
    swiglu,
)

LAYERS: dict[str, ModuleType] = {
    m.TYPE: m for m in (dense, conv2d, multi_head_attention, layer_norm, rms_norm, swiglu, rnn,
                        lstm, softmax, parallel)
}

# Other spellings users and LOOM's docs use for the same kinds.
ALIASES = {
    "fully_connected": "dense", "linear": "dense", "conv": "conv2d", "mha": "multi_head_attention",
    "attention": "multi_head_attention", "layernorm": "layer_norm", "rmsnorm": "rms_norm",
}


def register(module: ModuleType) -> None:
    """Add a layer module to the registry (used by softmax/parallel and plugins)."""
    LAYERS[module.TYPE] = module


def layer_module(kind: str, where: str = "layer") -> ModuleType:
    """Return the module for a LOOM type name or alias.

    Raises:
        UnsupportedLayerError: the type is not registered.
    """
    key = ALIASES.get(kind, kind) if isinstance(kind, str) else kind
    if key not in LAYERS:
        raise UnsupportedLayerError(
            f"{where}: unknown layer type {kind!r}; registered types are {sorted(LAYERS)}")
    return LAYERS[key]


def splits_backward(module: ModuleType, spec) -> bool:
    """Whether `module` runs `spec`'s backward as the optional pair backward_input /
    weight_grads: it has the pair and, where it defines `splits(spec)`, that spec gains from
    it (a Parallel layer only when one of its branches has the pair)."""
    return hasattr(module, "backward_input") and getattr(module, "splits", lambda s: True)(spec)


def module_of(spec) -> ModuleType:
    """The registry module that owns a spec instance."""
    return layer_module(getattr(spec, "kind", type(spec).__name__), "spec")
