"""LOOM's network blueprint (ExtractNetworkBlueprint): grid position, kind, shapes, parameters.

Per-kind facts come from each layer module's `telemetry(spec)` (the registry); this module only
adds the grid coordinates, LOOM's field order and its omitempty rules:

    ModelTelemetry  id, total_layers, total_parameters, layers
    LayerTelemetry  grid_row, grid_col, cell_layer, type, activation*, parameters,
                    input_shape*, output_shape*, branches* (recursive), combine_mode*
                    (* omitted when empty, as Go's `omitempty`)

Branches carry grid_row = grid_col = cell_layer = 0, as in LOOM.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..io import gojson
from ..layers import module_of

# LOOM's activationToString: the five named ones, everything else "linear".
_ACTIVATIONS = ("relu", "sigmoid", "tanh", "softplus", "leaky_relu")


@dataclass
class LayerTelemetry:
    """One layer's blueprint entry (LOOM's LayerTelemetry)."""

    grid_row: int
    grid_col: int
    cell_layer: int
    type: str
    activation: str
    parameters: int
    input_shape: list = field(default_factory=list)
    output_shape: list = field(default_factory=list)
    branches: list = field(default_factory=list)
    combine_mode: str = ""

    def to_dict(self) -> dict:
        """LOOM's JSON object: keys in its order, empty optional fields left out."""
        out = {"grid_row": self.grid_row, "grid_col": self.grid_col,
               "cell_layer": self.cell_layer, "type": self.type}
        if self.activation:
            out["activation"] = self.activation
        out["parameters"] = self.parameters
        for key in ("input_shape", "output_shape"):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        if self.branches:
            out["branches"] = [b.to_dict() for b in self.branches]
        if self.combine_mode:
            out["combine_mode"] = self.combine_mode
        return out


@dataclass
class ModelTelemetry:
    """A network's blueprint (LOOM's ModelTelemetry)."""

    id: str
    total_layers: int
    total_parameters: int
    layers: list

    def to_dict(self) -> dict:
        return {"id": self.id, "total_layers": self.total_layers,
                "total_parameters": self.total_parameters,
                "layers": [layer.to_dict() for layer in self.layers]}

    def to_json(self, indent: bool = True) -> str:
        """Go's json.MarshalIndent(bp, "", "  ") (or json.Marshal with indent=False)."""
        return gojson.dumps(self.to_dict(), indent="  " if indent else None)


def layer_telemetry(spec, coords: tuple = (0, 0, 0)) -> LayerTelemetry:
    """The blueprint entry of one layer spec (branches recursively) at (row, col, layer)."""
    facts = module_of(spec).telemetry(spec)
    branches = [layer_telemetry(b) for b in facts.get("branches", ())]
    params = facts["parameters"] if "parameters" in facts else sum(b.parameters
                                                                    for b in branches)
    act = spec.activation if spec.activation in _ACTIVATIONS else "linear"
    return LayerTelemetry(*coords, spec.kind, act, int(params),
                          list(facts.get("input_shape", ())), list(facts.get("output_shape", ())),
                          branches, facts.get("combine_mode", ""))


def blueprint(net, model_id: str = "") -> ModelTelemetry:
    """LOOM's ExtractNetworkBlueprint(net, model_id) for a loomdist Network.

    Raises:
        ConfigError: a grid slot has no layer (LOOM always has one; set every slot first).
    """
    layers = []
    for i, slot in enumerate(net.layers):
        if slot is None:
            raise ConfigError(f"blueprint: layer {net.coords(i)} is not set; call set_layer "
                              f"for every grid slot before extracting a blueprint")
        layers.append(layer_telemetry(slot.spec, net.coords(i)))
    return ModelTelemetry(str(model_id), len(net.layers), sum(t.parameters for t in layers),
                          layers)
