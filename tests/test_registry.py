"""Layer-init registry (LOOM names and snake_case) and Network introspection."""

from __future__ import annotations

import json

import pytest

import loomdist
from loomdist import ConfigError
from loomdist.layers import LAYERS
from loomdist.registry import call_layer_init, list_layer_init_functions, snake_case


def test_every_kind_has_an_init_function():
    names = {r["loom_name"] for r in list_layer_init_functions()}
    assert {"InitDenseLayer"} <= names
    assert all(getattr(m, "INIT_FUNCTIONS", None) for m in LAYERS.values())


def test_listing_has_signature_and_arg_types():
    row = next(r for r in list_layer_init_functions() if r["loom_name"] == "InitDenseLayer")
    assert row["name"] == "init_dense_layer" and row["num_args"] == 3
    assert row["arg_types"][:2] == ["int", "int"]
    assert row["signature"].startswith("func(int, int, ")


@pytest.mark.parametrize("name", ["InitDenseLayer", "init_dense_layer"])
def test_call_by_either_name_with_coercion(name):
    spec = call_layer_init(name, [128, 64.0, 4])
    assert (spec.input_height, spec.output_height, spec.activation) == (128, 64, "leaky_relu")
    assert call_layer_init(name, {"input_size": "3", "output_size": 2}).input_height == 3


@pytest.mark.parametrize("name, args, match", [
    ("InitWarpLayer", [], "layer init function InitWarpLayer not found"),
    ("InitDenseLayer", [1], "InitDenseLayer expects 2 arguments, got 1"),
    ("InitDenseLayer", [1.5, 2], r"input_size=1.5\): expected an integer"),
    ("InitDenseLayer", [1, 2, "gelu"], "unknown activation 'gelu'"),
])
def test_call_errors(name, args, match):
    with pytest.raises(ConfigError, match=match):
        call_layer_init(name, args)


def test_snake_case_of_loom_names():
    assert snake_case("InitConv2DLayer") == "init_conv2d_layer"
    assert snake_case("InitRNNLayer") == "init_rnn_layer"
    assert snake_case("InitMultiHeadAttentionLayer") == "init_multi_head_attention_layer"


def test_introspection_shapes():
    net = loomdist.Network(4, 1, 1, 1)
    methods = net.get_methods()
    fwd = next(m for m in methods if m["method_name"] == "forward")
    assert set(fwd) == {"method_name", "parameters", "returns"}
    assert fwd["parameters"] == [{"name": "x", "type": "any"}]
    assert fwd["returns"] == ["ndarray"]
    assert json.loads(net.get_methods_json()) == methods
    assert net.get_methods_json().startswith('[\n  {')
    assert "forward" in net.list_methods() and net.has_method("ForwardCPU")
    assert not net.has_method("Fly")
    assert net.get_method_signature("ForwardCPU") == "ForwardCPU(any) ndarray"
    assert net.get_method_signature("set_layer").startswith("set_layer(int, int, int, ")
    with pytest.raises(ConfigError, match="method Fly not found"):
        net.get_method_signature("Fly")
