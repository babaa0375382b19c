"""LOOM bundle files: Go-exact encoding, round trips and every documented error."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loomdist
from loomdist import ModelFormatError, UnsupportedLayerError
from loomdist.io.gojson import go_float32
from loomdist.layers import dense
from tests.loomfix import FIXTURES

DENSE = (FIXTURES / "dense_scaled_relu.model.json").read_text()
LOADERS_ERRORS = (ModelFormatError, UnsupportedLayerError, loomdist.ConfigError)


@pytest.mark.parametrize("value, text", [
    (1.0, "1"), (1e-5, "0.00001"), (1e-6, "0.000001"), (1e-7, "1e-7"), (-0.0, "-0"),
    (1e21, "1e+21"), (1e20, "100000000000000000000"), (0.1, "0.1"), (123456789.0, "123456790"),
    (-0.59570754, "-0.59570754"),
])
def test_go_float32_format(value, text):
    assert go_float32(value) == text


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_go_float32_round_trips_bits(v):
    assert np.float32(float(go_float32(v))).tobytes() == np.float32(v).tobytes()


def test_nan_weights_cannot_be_saved():
    net = loomdist.load_model_from_string(DENSE, "dense_scaled_relu")
    net.param((0, 0, 0, "kernel"))[0, 0] = np.nan
    with pytest.raises(ModelFormatError, match="NaN"):
        net.save_model_to_string("m")


def test_built_model_save_reload_gives_identical_outputs(tmp_path):
    net = loomdist.Network(0, 2, 1, 2, batch_size=3)
    for i, (a, b) in enumerate([(4, 6), (6, 5), (5, 5), (5, 2)]):
        net.set_layer(*net.coords(i), dense.Spec(a, b, ["tanh", "softplus", "relu", "sigmoid"][i]),
                      rng=i)
    path = tmp_path / "sub" / "m.json"
    net.save_model(path, "m")
    again = loomdist.load_model(path, "m")
    x = np.random.default_rng(0).standard_normal(12).astype(np.float32)
    assert np.array_equal(net.forward(x), again.forward(x))
    for (k1, a), (k2, b) in zip(net.parameters(), again.parameters()):
        assert k1 == k2 and a.tobytes() == b.tobytes()
    assert not list(path.parent.glob(".*tmp"))  # no temp files left behind


def test_bundle_with_several_models(tmp_path):
    a = loomdist.load_model_from_string(DENSE, "dense_scaled_relu")
    loomdist.save_bundle(tmp_path / "b.json", {"a": a, "b": a})
    models = loomdist.load_bundle(tmp_path / "b.json")
    assert sorted(models) == ["a", "b"]
    with pytest.raises(ModelFormatError, match="model id 'c' not in the bundle"):
        loomdist.load_model(tmp_path / "b.json", "c")


@pytest.mark.parametrize("name", ["linear", "gelu", "Tanh", ""])
def test_linear_and_unknown_activations_load_as_scaled_relu(name):
    # LOOM's stringToActivation: exact known names only, anything else is ScaledReLU
    text = (FIXTURES / "dense_stack_all_activations.model.json").read_text()
    text = text.replace('"activation": "sigmoid"', f'"activation": "{name}"', 1)
    net = loomdist.load_model_from_string(text, "dense_stack_all_activations")
    assert net.get_layer(0, 0, 1).activation == "relu"


def _mutate_cfg(fn):
    b = json.loads(DENSE)
    fn(b["models"][0])
    return json.dumps(b)


def _mutate_weights(fn):
    b = json.loads(DENSE)
    w = json.loads(base64.b64decode(b["models"][0]["weights"]["data"]))
    fn(w)
    b["models"][0]["weights"]["data"] = base64.b64encode(json.dumps(w).encode()).decode()
    return json.dumps(b)


@pytest.mark.parametrize("text, error, match", [
    ("", ModelFormatError, "not valid JSON"),
    (DENSE[: len(DENSE) // 2], ModelFormatError, "truncated"),
    ("[1, 2]", ModelFormatError, "top level"),
    ('{"type": "modelhost/bundle", "models": []}', ModelFormatError, "non-empty list"),
    (_mutate_cfg(lambda m: m["cfg"]["layers"][0].update(type="warp_drive")),
     UnsupportedLayerError, "warp_drive"),
    (_mutate_cfg(lambda m: m["cfg"]["layers"][0].update(activation=5)),
     ModelFormatError, r"layers\[0\].activation: expected a string, got 5"),
    (_mutate_cfg(lambda m: m["cfg"].update(grid_rows="1")), ModelFormatError,
     "cfg.grid_rows: expected a positive integer"),
    (_mutate_cfg(lambda m: m["cfg"]["layers"][1].pop("input_height")), ModelFormatError,
     r"layers\[1\]: invalid dense layer: .*input_height must be >= 1 \(got 0\)"),
    (_mutate_cfg(lambda m: m["cfg"]["layers"][1].update(input_height=-3)), ModelFormatError,
     "input_height must be >= 1"),
    (_mutate_cfg(lambda m: m["weights"].update(data="!!!not base64!!!")), ModelFormatError,
     "not base64-encoded JSON"),
    (_mutate_cfg(lambda m: m["weights"].update(fmt="npz")), ModelFormatError, "jsonModelB64"),
    (_mutate_weights(lambda w: w["layers"][0].update(kernel=[1.0, 2.0])), ModelFormatError,
     r"kernel: 2 values, the layer config needs 30"),
    (_mutate_weights(lambda w: w["layers"][0].update(biases=["a"] * 5)), ModelFormatError,
     "list of finite numbers"),
    (_mutate_weights(lambda w: w["layers"].pop()), ModelFormatError, "1 weight entries for 2"),
])
def test_bad_model_text_raises_documented_error(text, error, match):
    with pytest.raises(error, match=match):
        loomdist.load_model_from_string(text, "dense_scaled_relu")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file at"):
        loomdist.load_model(tmp_path / "nope.json", "x")


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_fuzzed_model_text_only_raises_documented_errors(data):
    text = DENSE
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["cut", "flip", "insert", "delete"]))
        pos = data.draw(st.integers(0, max(0, len(text) - 1)))
        if op == "cut":
            text = text[:pos]
        elif op == "flip":
            text = text[:pos] + data.draw(st.characters(max_codepoint=127)) + text[pos + 1:]
        elif op == "insert":
            text = text[:pos] + data.draw(st.text(max_size=5)) + text[pos:]
        else:
            text = text[:pos] + text[pos + 5:]
    try:
        loomdist.load_model_from_string(text, "dense_scaled_relu")
    except LOADERS_ERRORS:
        pass


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(), c, max_size=3),
                    max_leaves=10))
def test_fuzzed_cfg_layer_only_raises_documented_errors(junk):
    b = json.loads(DENSE)
    b["models"][0]["cfg"]["layers"][0] = junk
    try:
        loomdist.load_model_from_string(json.dumps(b), "dense_scaled_relu")
    except LOADERS_ERRORS:
        pass
