"""Pictures of a recording: a PNG heatmap per grid cell and a self-contained HTML page.

Both show one number per (layer, tick) from the recording's forward events: `metric` is
avg, max or min (of the layer's output) or active (the fraction of outputs > 0).

    PNG:  one panel per grid cell, laid out as the grid (rows x cols); inside a panel one
          heatmap row per layer of the cell, one column per tick, one shared colour scale.
    HTML: the grid as inline SVG, each layer a coloured box; a slider (and play button)
          walks through the ticks. Data, script and styles are inline: no network access.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..io import gojson
from .recorder import as_table

METRICS = ("avg", "max", "min", "active")


@dataclass
class Activity:
    """values[k, t]: the metric of layer k at tick t (NaN where it was not recorded)."""

    layers: list  # dicts: idx, row, col, cell_layer, type, name
    ticks: np.ndarray
    values: np.ndarray
    metric: str

    @property
    def grid(self) -> tuple[int, int, int]:
        return tuple(1 + max(d[k] for d in self.layers) for k in ("row", "col", "cell_layer"))


def activity(recording, metric: str = "avg") -> Activity:
    """The (layer x tick) matrix of `metric` over the recording's forward events.

    Raises:
        ConfigError: unknown metric, or no forward events in the recording.
    """
    if metric not in METRICS:
        raise ConfigError(f"activity: unknown metric {metric!r}; use one of {list(METRICS)}")
    t = as_table(recording)
    cols = {k: np.asarray(t.column(k).to_numpy(zero_copy_only=False)) for k in
            ("type", "tick", "layer_idx", "grid_row", "grid_col", "cell_layer", "stats_type",
             "avg", "max", "min", "active", "total")}
    fwd = cols["type"] == "forward"
    if not fwd.any():
        raise ConfigError(f"activity: the recording has no forward events ({t.num_rows} rows); "
                          f"record a run with at least one forward pass")
    c = {k: v[fwd] for k, v in cols.items()}
    idx, first = np.unique(c["layer_idx"], return_index=True)
    ticks = np.unique(c["tick"])
    layers = [{"idx": int(i), "row": int(c["grid_row"][j]), "col": int(c["grid_col"][j]),
               "cell_layer": int(c["cell_layer"][j]), "type": str(c["stats_type"][j])}
              for i, j in zip(idx, first)]
    for d in layers:
        d["name"] = f"({d['row']},{d['col']},{d['cell_layer']}) {d['type']}"
    v = c["active"] / np.maximum(c["total"], 1) if metric == "active" else c[metric]
    values = np.full((len(idx), len(ticks)), np.nan)
    values[np.searchsorted(idx, c["layer_idx"]), np.searchsorted(ticks, c["tick"])] = v
    return Activity(layers, ticks, values, metric)


def write_png(recording, path, metric: str = "avg", title: str = "") -> Path:
    """Heatmap PNG of per-layer activity over ticks, panels laid out by grid cell."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    act = activity(recording, metric)
    rows, cols, _ = act.grid
    fig = Figure(figsize=(4.5 * cols, 0.5 + 1.6 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    lo, hi = _limits(act.values)
    image = None
    for r in range(rows):
        for c in range(cols):
            image = _panel(axes[r, c], act, r, c, lo, hi) or image
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), label=metric)
    fig.suptitle(title or f"layer activity ({metric}) over ticks")
    fig.savefig(_out(path, ".png"), dpi=100)
    return Path(path)


def _panel(ax, act: Activity, r: int, c: int, lo: float, hi: float):
    rows = [k for k, d in enumerate(act.layers) if (d["row"], d["col"]) == (r, c)]
    ax.set_title(f"cell ({r},{c})", fontsize=9)
    if not rows:
        ax.set_axis_off()
        return None
    extent = (act.ticks[0] - 0.5, act.ticks[-1] + 0.5, len(rows) - 0.5, -0.5)
    image = ax.imshow(act.values[rows], aspect="auto", interpolation="nearest",
                      cmap="viridis", vmin=lo, vmax=hi, extent=extent)
    ax.set_yticks(range(len(rows)), [act.layers[k]["name"] for k in rows], fontsize=7)
    ax.set_xlabel("tick", fontsize=8)
    return image


def _limits(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def _out(path, suffix: str) -> Path:
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise ConfigError(f"viz: output {p} should end in {suffix}; name the file *{suffix}")
    if not p.parent.is_dir():
        raise ConfigError(f"viz: directory {p.parent} does not exist; create it first")
    return p


def write_html(recording, path, metric: str = "avg", title: str = "") -> Path:
    """A self-contained HTML page (inline SVG + JS) of the grid's activity over ticks."""
    act = activity(recording, metric)
    lo, hi = _limits(act.values)
    data = {"layers": act.layers, "ticks": [int(t) for t in act.ticks],
            "values": [[None if not np.isfinite(v) else float(v) for v in row]
                       for row in act.values],
            "grid": list(act.grid), "metric": metric, "lo": lo, "hi": hi}
    title = title or f"loomdist activity ({metric})"
    page = (_TEMPLATE.replace("__TITLE__", html.escape(title))
            .replace("__LAYERS__", html.escape(", ".join(d["name"] for d in act.layers)))
            .replace("__DATA__", gojson.dumps(data)))  # gojson escapes <, >, &: safe inline
    _out(path, ".html").write_text(page, encoding="utf-8")
    return Path(path)


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{font-family:sans-serif;margin:16px;background:#fafafa}
#grid text{font-size:11px}
.controls{margin:8px 0}
</style></head>
<body>
<h2>__TITLE__</h2>
<p>Layers: __LAYERS__</p>
<div class="controls"><button id="play">play</button>
<input id="tick" type="range" min="0" value="0" style="width:60%">
<span id="label"></span></div>
<svg id="grid" xmlns="http://www.w3.org/2000/svg"></svg>
<script id="data" type="application/json">__DATA__</script>
<script>
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  const [R, C, LPC] = D.grid, CW = 220, BH = 26, PAD = 12;
  const svg = document.getElementById("grid"), NS = "http://www.w3.org/2000/svg";
  const CH = LPC * BH + 28;
  svg.setAttribute("width", C * (CW + PAD) + PAD);
  svg.setAttribute("height", R * (CH + PAD) + PAD);
  function el(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e);
    return e;
  }
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) {
    const x = PAD + c * (CW + PAD), y = PAD + r * (CH + PAD);
    el("rect", {x: x, y: y, width: CW, height: CH, fill: "none", stroke: "#888"});
    el("text", {x: x + 6, y: y + 16}, "cell (" + r + "," + c + ")");
  }
  const boxes = D.layers.map(function (d) {
    const x = PAD + d.col * (CW + PAD) + 6, y = PAD + d.row * (CH + PAD) + 22 + d.cell_layer * BH;
    const rect = el("rect", {x: x, y: y, width: CW - 12, height: BH - 4, rx: 3});
    const text = el("text", {x: x + 6, y: y + 15}, d.name);
    return {rect: rect, text: text, name: d.name};
  });
  function colour(v) {
    if (v === null) return "#ddd";
    const t = Math.max(0, Math.min(1, (v - D.lo) / (D.hi - D.lo)));
    const h = 240 - 240 * t;
    return "hsl(" + h + ",70%," + (35 + 30 * t) + "%)";
  }
  const slider = document.getElementById("tick"), label = document.getElementById("label");
  slider.max = D.ticks.length - 1;
  function show(k) {
    boxes.forEach(function (b, i) {
      const v = D.values[i][k];
      b.rect.setAttribute("fill", colour(v));
      b.text.textContent = b.name + ": " + (v === null ? "-" : v.toPrecision(4));
    });
    label.textContent = "tick " + D.ticks[k] + " (" + D.metric + ")";
  }
  slider.oninput = function () { show(+slider.value); };
  let timer = null;
  document.getElementById("play").onclick = function () {
    if (timer) { clearInterval(timer); timer = null; return; }
    timer = setInterval(function () {
      slider.value = (+slider.value + 1) % D.ticks.length; show(+slider.value);
    }, 50);
  };
  show(0);
})();
</script></body></html>
"""
