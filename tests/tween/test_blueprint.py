"""net.blueprint(): LOOM's ModelTelemetry fields, omitempty rules and parameter counts."""

from __future__ import annotations

import json

import numpy as np
import pytest

import loomdist
from loomdist import Network
from loomdist.errors import ConfigError
from loomdist.layers import LAYERS
from loomdist.tween import blueprint
from loomdist.tween.blueprint import layer_telemetry
from tests.cases import CASES
from tests.loomfix import FIXTURES, fixture_names

LAYER_KEYS = ["grid_row", "grid_col", "cell_layer", "type", "activation", "parameters",
              "input_shape", "output_shape", "branches", "combine_mode"]


def _ordered_subset(keys, allowed):
    order = [k for k in allowed if k in keys]
    return list(keys) == order


@pytest.mark.parametrize("name", fixture_names())
def test_fixture_blueprint_lists_every_layer(name):
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    net = loomdist.load_model(FIXTURES / data["model_file"], data["model_id"])
    bp = net.blueprint(data["model_id"])
    d = json.loads(bp.to_json())
    assert list(d) == ["id", "total_layers", "total_parameters", "layers"]
    assert d["id"] == data["model_id"] and d["total_layers"] == net.total_layers
    assert len(d["layers"]) == net.total_layers
    cfgs = json.loads((FIXTURES / data["model_file"]).read_text())["models"][0]["cfg"]["layers"]
    for i, (layer, cfg) in enumerate(zip(d["layers"], cfgs)):
        assert _ordered_subset(layer, LAYER_KEYS)
        assert (layer["grid_row"], layer["grid_col"], layer["cell_layer"]) == net.coords(i)
        assert layer["type"] == cfg["type"]
        slot = net.layers[i]
        assert layer["parameters"] == sum(a.size for a in slot.params.values())
        if cfg["type"] not in ("softmax", "parallel"):
            n_in, n_out = (int(np.prod(layer[k])) for k in ("input_shape", "output_shape"))
            assert n_in > 0 and slot.spec.out_features(n_in) == n_out
    # LOOM's formulas agree with the real number of parameter floats for every fixture
    assert d["total_parameters"] == net.num_parameters()


def test_dense_fixture_exact_json():
    net = loomdist.load_model(FIXTURES / "dense_scaled_relu.model.json", "dense_scaled_relu")
    specs = [s.spec for s in net.layers]
    want = {"id": "x", "total_layers": 2, "total_parameters": net.num_parameters(),
            "layers": [{"grid_row": 0, "grid_col": 0, "cell_layer": i, "type": "dense",
                        "activation": s.activation,
                        "parameters": s.input_height * s.output_height + s.output_height,
                        "input_shape": [s.input_height], "output_shape": [s.output_height]}
                       for i, s in enumerate(specs)]}
    assert net.blueprint("x").to_json(indent=False) == json.dumps(want, separators=(",", ":"))
    assert net.blueprint("x").to_json() == json.dumps(want, indent=2)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_case_counts_its_parameter_floats(case):
    module = LAYERS[case.kind]
    params = module.init(case.spec, np.random.default_rng(0))
    t = layer_telemetry(case.spec)
    assert t.parameters == sum(a.size for a in params.values())
    assert t.type == case.kind and t.activation == case.spec.activation


def test_every_registered_kind_has_telemetry_facts():
    for kind, module in LAYERS.items():
        assert callable(getattr(module, "telemetry", None)), kind
        assert isinstance(module.LOOM_TYPE_ID, int) and isinstance(module.STATS_NAME, str)


def _spec(kind, *a, **k):
    return LAYERS[kind].Spec(*a, **k)


def test_shapes_per_kind_follow_loom():
    conv = layer_telemetry(_spec("conv2d", 6, 5, 2, 3, 3, 2, 0, "tanh"))
    assert (conv.input_shape, conv.output_shape, conv.parameters) == ([2, 6, 5], [3, 2, 2],
                                                                      3 * 2 * 9 + 3)
    mha = layer_telemetry(_spec("multi_head_attention", 8, 2, 4))
    assert (mha.input_shape, mha.output_shape, mha.parameters) == ([4, 8], [4, 8],
                                                                   4 * 64 + 4 * 8)
    lstm = layer_telemetry(_spec("lstm", 3, 4, 5))
    assert (lstm.input_shape, lstm.output_shape, lstm.parameters) == ([5, 3], [5, 4],
                                                                      4 * (12 + 16 + 4))
    sw = layer_telemetry(_spec("swiglu", 4, 6))
    assert (sw.input_shape, sw.output_shape, sw.parameters) == ([4], [4], 2 * 30 + 28)
    assert layer_telemetry(_spec("rms_norm", 7)).parameters == 7
    assert layer_telemetry(_spec("layer_norm", 7)).parameters == 14


def test_softmax_and_parallel_omit_shapes_and_nest_branches():
    d = LAYERS["dense"].Spec
    inner = _spec("parallel", (d(6, 3, "tanh"), d(6, 3, "linear")), "add")
    outer = _spec("parallel", (inner, _spec("softmax")), "")
    got = layer_telemetry(outer, (1, 2, 3)).to_dict()
    assert list(got) == ["grid_row", "grid_col", "cell_layer", "type", "activation",
                         "parameters", "branches", "combine_mode"]
    assert got["combine_mode"] == "concat"  # LOOM's default for an empty mode
    assert got["parameters"] == 2 * (6 * 3 + 3)
    b0, b1 = got["branches"]
    assert (b0["grid_row"], b0["combine_mode"], b0["parameters"]) == (0, "add", 42)
    assert b0["branches"][1]["activation"] == "linear"
    assert b1 == {"grid_row": 0, "grid_col": 0, "cell_layer": 0, "type": "softmax",
                  "activation": "relu", "parameters": 0}


def test_grid_coordinates_and_totals():
    net = Network(4, 2, 3, 2)
    for i in range(net.total_layers):
        net.set_layer(*net.coords(i), LAYERS["dense"].Spec(4, 4, "sigmoid"), rng=i)
    bp = blueprint(net, "grid")
    assert [(t.grid_row, t.grid_col, t.cell_layer) for t in bp.layers] == \
        [net.coords(i) for i in range(12)]
    assert bp.total_parameters == net.num_parameters() == 12 * 20


def test_blueprint_of_incomplete_grid_raises():
    net = Network(4, 1, 2, 1)
    net.set_layer(0, 0, 0, LAYERS["dense"].Spec(4, 4))
    with pytest.raises(ConfigError, match=r"blueprint: layer \(0, 1, 0\) is not set"):
        net.blueprint()
