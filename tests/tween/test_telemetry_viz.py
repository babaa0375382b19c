"""PNG heatmap and self-contained HTML page of a recording's activity."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pytest

from loomdist import Network
from loomdist.errors import ConfigError
from loomdist.layers import LAYERS
from loomdist.tween import ActivityRecorder
from loomdist.tween.viz import activity, write_html, write_png


@pytest.fixture(scope="module")
def recording():
    net = Network(4, 2, 2, 2)
    for i in range(8):
        net.set_layer(*net.coords(i), LAYERS["dense"].Spec(4, 4, ("tanh", "relu")[i % 2]),
                      rng=i)
    rec = ActivityRecorder()
    net.attach_observer(rec)
    rng = np.random.default_rng(0)
    for _ in range(30):
        y = net.forward(rng.standard_normal(4))
        net.backward(y)
    return rec.table()


def test_activity_matrix(recording):
    act = activity(recording, "avg")
    assert act.values.shape == (8, 30) and act.grid == (2, 2, 2)
    fwd = [r for r in recording.to_pylist() if r["type"] == "forward"]
    want = np.float32(next(r["avg"] for r in fwd if r["tick"] == 7 and r["layer_idx"] == 5))
    assert np.float32(act.values[5, 7]) == want
    frac = activity(recording, "active").values
    assert ((frac >= 0) & (frac <= 1)).all()
    assert act.layers[5]["name"] == "(1,0,1) dense"


def test_png_is_written(recording, tmp_path):
    path = write_png(recording, tmp_path / "a.png", metric="max")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert data[12:16] == b"IHDR"


def test_html_is_self_contained(recording, tmp_path):
    page = write_html(recording, tmp_path / "a.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "(0,1,1) dense" in page and "<svg" in page
    assert not re.search(r"(src|href)=\"?https?:", page)  # nothing loaded from the network
    blob = re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S)
    data = json.loads(blob.group(1))
    assert data["ticks"] == list(range(30)) and len(data["values"]) == 8
    assert data["values"][5][7] == pytest.approx(activity(recording).values[5, 7])


def test_bad_input_raises(recording, tmp_path):
    with pytest.raises(ConfigError, match="unknown metric 'mean'"):
        activity(recording, "mean")
    with pytest.raises(ConfigError, match="has no forward events"):
        activity(ActivityRecorder().table())
    with pytest.raises(ConfigError, match="not an activity recording"):
        write_png(pa.table({"a": [1]}), tmp_path / "x.png")
    with pytest.raises(ConfigError, match=r"should end in \.png"):
        write_png(recording, tmp_path / "x.jpg")
    with pytest.raises(ConfigError, match="does not exist"):
        write_html(recording, tmp_path / "missing" / "x.html")
