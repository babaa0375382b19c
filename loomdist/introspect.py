"""Runtime introspection of Network methods in LOOM's JSON shape (GetMethods & co.)."""

from __future__ import annotations

import inspect
import json
import typing

from .errors import ConfigError

# LOOM's Go method names -> loomdist's, so LOOM users can ask by the names they know.
LOOM_NAMES = {
    "ForwardCPU": "forward", "BackwardCPU": "backward", "SetLayer": "set_layer",
    "GetLayer": "get_layer", "SaveModel": "save_model",
    "SaveModelToString": "save_model_to_string",
    "KernelGradients": "kernel_gradients", "BiasGradients": "bias_gradients",
    "Activations": "activations", "ZeroGradients": "zero_grad", "Train": "train",
    "EvaluateNetwork": "evaluate", "GetMethods": "get_methods",
    "GetMethodsJSON": "get_methods_json", "ListMethods": "list_methods",
    "HasMethod": "has_method", "GetMethodSignature": "get_method_signature",
}


def _type_text(t) -> str:
    if t is inspect.Parameter.empty or t is None:
        return "any"
    if t is type(None):
        return "None"
    return getattr(t, "__name__", None) or str(t).replace("typing.", "")


class Introspectable:
    """Mixin: lists the public methods of the class with parameter and return types."""

    def _methods(self) -> dict:
        out = {}
        for name, fn in inspect.getmembers(type(self), inspect.isfunction):
            if not name.startswith("_"):
                out[name] = fn
        return out

    def get_methods(self) -> list[dict]:
        """[{"method_name", "parameters": [{"name", "type"}], "returns": [...]}] (LOOM shape)."""
        return [self._describe(name, fn) for name, fn in sorted(self._methods().items())]

    def get_methods_json(self) -> str:
        """get_methods() as JSON indented by 2 spaces."""
        return json.dumps(self.get_methods(), indent=2)

    def list_methods(self) -> list[str]:
        """The public method names."""
        return sorted(self._methods())

    def has_method(self, name: str) -> bool:
        """True for a public method name, or LOOM's name for it ("ForwardCPU")."""
        return LOOM_NAMES.get(name, name) in self._methods()

    def get_method_signature(self, name: str) -> str:
        """`name(t1, t2) ret` or `name(t1) (r1, r2)`; raises ConfigError if not found."""
        key = LOOM_NAMES.get(name, name)
        fn = self._methods().get(key)
        if fn is None:
            raise ConfigError(f"method {name} not found; see list_methods()")
        info = self._describe(key, fn)
        args = ", ".join(p["type"] for p in info["parameters"])
        rets = info["returns"]
        ret = "" if not rets else rets[0] if len(rets) == 1 else f"({', '.join(rets)})"
        return f"{name}({args}) {ret}".rstrip()

    @staticmethod
    def _describe(name: str, fn) -> dict:
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # unresolved forward refs: fall back to raw annotations
            hints = getattr(fn, "__annotations__", {})
        params = [{"name": p, "type": _type_text(hints.get(p, inspect.Parameter.empty))}
                  for p in list(inspect.signature(fn).parameters)[1:]]
        ret = hints.get("return", None)
        if typing.get_origin(ret) is tuple:
            rets = [_type_text(a) for a in typing.get_args(ret)]
        else:
            rets = [] if ret is None or ret is type(None) else [_type_text(ret)]
        return {"method_name": name, "parameters": params, "returns": rets}
