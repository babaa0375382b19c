"""Training: LOOM's Train, Trainer.fit, losses, checkpoints, exact resume, data validation."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import loomdist
from loomdist import ConfigError, DataError, ShapeError
from loomdist.data import check_fits, from_arrays, load_data
from loomdist.io import checkpoint as ckpt
from loomdist.layers import dense, softmax
from loomdist.losses import fused_softmax_ce, loss_and_grad
from loomdist.train import Trainer
from loomdist.train_config import TrainingConfig


def small_net(seed=0):
    net = loomdist.Network(0, 1, 1, 3)
    net.set_layer(0, 0, 0, dense.Spec(4, 16, "tanh"), rng=seed)
    net.set_layer(0, 0, 1, dense.Spec(16, 3, "linear"), rng=seed + 1)
    net.set_layer(0, 0, 2, softmax.Spec())
    return net


def task(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    labels = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5)
    return x, np.eye(3, dtype=np.float32)[labels]


CFG = TrainingConfig(epochs=4, learning_rate=0.02, optimizer="adam",
                     loss_type="cross_entropy", batch_size=16, checkpoint_every=5)


def test_losses_follow_loom():
    o = np.array([0.2, 0.7, 0.1], np.float32)
    t = np.array([0.0, 1.0, 0.0], np.float32)
    loss, g = loss_and_grad("mse", o, t)
    assert loss == pytest.approx((0.04 + 0.09 + 0.01) / 3)
    np.testing.assert_allclose(g, 2 * (o - t) / 3, rtol=1e-6)
    loss, g = loss_and_grad("cross_entropy", o, t)
    assert loss == pytest.approx(-np.log(0.7) / 3, rel=1e-6)
    np.testing.assert_allclose(g, [0, -1 / 0.7 / 3, 0], rtol=1e-6)


def test_fused_ce_equals_unfused_gradient():
    net = small_net().astype(np.float64)
    x, y = task(8)
    out = net.forward(x.astype(np.float64))
    _, dy = loss_and_grad("cross_entropy", out, y.astype(np.float64))
    net.zero_grad()
    dx_chain = net.backward(dy)
    loss, p, dz = fused_softmax_ce(net.activations()[-2].reshape(out.shape), y, 1.0, 3)
    np.testing.assert_allclose(p, out, rtol=1e-10)
    net.zero_grad()
    np.testing.assert_allclose(net.backward(dz, skip_last=True), dx_chain, rtol=1e-7, atol=1e-12)


def test_loom_style_train_updates_every_layer_and_reduces_loss():
    net = small_net()
    x, y = task(32)
    batches = [(x[i:i + 1].ravel(), y[i].ravel()) for i in range(32)]
    before = {k: a.copy() for k, a in net.parameters()}
    res = net.train(batches, TrainingConfig(epochs=5, learning_rate=0.05))
    assert len(res.loss_history) == 5 and res.loss_history[-1] < res.loss_history[0]
    assert res.best_loss == min(res.loss_history) and res.avg_throughput > 0
    assert all(not np.array_equal(a, before[k]) for k, a in net.parameters())


def test_trainer_learns_and_records_history():
    net = small_net()
    x, y = task()
    res = Trainer(net, CFG).fit(x, y)
    assert res.steps == 4 * 8 and len(res.history) == 4
    assert res.loss_history[-1] < 0.6 * res.loss_history[0]


def test_resume_in_process_is_bit_identical(tmp_path):
    x, y = task()
    full = small_net()
    Trainer(full, CFG).fit(x, y)

    class Stop(Exception):
        pass

    def stop_at_13(step, loss):
        if step == 13:
            raise Stop

    with pytest.raises(Stop):
        Trainer(small_net(), CFG, tmp_path, on_step=stop_at_13).fit(x, y)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["00000005", "00000010"]
    resumed = small_net()
    Trainer(resumed, CFG, tmp_path).fit(x, y, resume=True)
    for (k, a), (_, b) in zip(full.parameters(), resumed.parameters()):
        assert a.tobytes() == b.tobytes(), k


SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np
    sys.path.insert(0, {root!r})
    from tests.test_train import CFG, small_net, task
    from loomdist.train import Trainer
    x, y = task()
    kill = int(sys.argv[2])
    def on_step(step, loss):
        if step == kill:
            os._exit(9)  # the process dies without cleanup, like a SIGKILL
    net = small_net()
    Trainer(net, CFG, sys.argv[1], on_step=on_step).fit(x, y, resume=sys.argv[3] == "1")
    np.savez(sys.argv[1] + "/final.npz", *[a for _, a in net.parameters()])
""")


def test_killed_process_resumes_to_identical_weights(tmp_path):
    from pathlib import Path
    root = str(Path(__file__).resolve().parents[1])
    script = tmp_path / "job.py"
    script.write_text(SCRIPT.format(root=root))
    run = lambda d, kill, resume: subprocess.run(  # noqa: E731
        [sys.executable, str(script), str(d), str(kill), resume], capture_output=True,
        text=True, timeout=300)
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(a, -1, "0").returncode == 0
    killed = run(b, 17, "0")
    assert killed.returncode == 9, killed.stderr
    assert not (b / "final.npz").exists()
    assert run(b, -1, "1").returncode == 0
    with np.load(a / "final.npz") as za, np.load(b / "final.npz") as zb:
        for k in za.files:
            assert za[k].tobytes() == zb[k].tobytes()


def test_crash_between_checkpoint_files_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    x, y = task()
    Trainer(small_net(), CFG, tmp_path).fit(x[:80], y[:80])  # complete checkpoints exist
    good = ckpt.latest_checkpoint(tmp_path)
    writes = []

    def crash(name):
        writes.append(name)
        if len(writes) == 2:
            raise OSError("disk unplugged")

    monkeypatch.setattr(ckpt, "_before_write", crash)
    with pytest.raises(OSError, match="disk unplugged"):
        ckpt.save_checkpoint(tmp_path, 999, small_net(), None, {"step": 999})
    assert ckpt.latest_checkpoint(tmp_path) == good
    assert not (tmp_path / "checkpoints" / "00000999").exists()
    monkeypatch.setattr(ckpt, "_before_write", lambda name: None)
    ckpt.save_checkpoint(tmp_path, 1000, small_net(), None, {"step": 1000})
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_corrupt_checkpoint_is_detected(tmp_path):
    net = small_net()
    path = ckpt.save_checkpoint(tmp_path, 1, net, None, {"step": 1})
    (path / "cell_0_0.npz").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="does not match its manifest"):
        ckpt.load_checkpoint(path, net, None)


@pytest.mark.parametrize("x, y, match", [
    (np.zeros((3, 4)), np.zeros(2, int), "3 inputs but 2 targets"),
    (np.zeros((0, 4)), np.zeros(0, int), "empty"),
    (np.array([[np.nan, 0, 0, 0]]), np.zeros(1, int), "NaN/Inf"),
    (np.array([["a"] * 4]), np.zeros(1, int), "not numeric"),
    (np.zeros((2, 4)), np.array([0, -1]), "negative class label"),
    (np.zeros(4), np.zeros(4, int), "must be 2-D"),
])
def test_bad_data(x, y, match):
    with pytest.raises(DataError, match=match):
        from_arrays(x, y)


def test_data_that_does_not_fit_the_network():
    with pytest.raises(DataError, match="label 5 is out of range"):
        check_fits(from_arrays(np.zeros((2, 4)), np.array([0, 5])), 4, 3)
    with pytest.raises(DataError, match="samples have 4 features, the network's first layer "
                                        "expects 6"):
        check_fits(from_arrays(np.zeros((2, 4)), np.array([0, 1])), 6, 3)


def test_data_files(tmp_path):
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([0, 1, 0, 1])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    table = pa.table({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": y})
    pq.write_table(table, tmp_path / "d.parquet")
    pcsv.write_csv(table, tmp_path / "d.csv")
    for name in ("d.npz", "d.parquet", "d.csv"):
        ds = load_data(str(tmp_path / name))
        np.testing.assert_array_equal(ds.x, x)
        np.testing.assert_array_equal(ds.y, y)
    with pytest.raises(DataError, match="no label column 'target'"):
        load_data(str(tmp_path / "d.parquet"), label="target")
    with pytest.raises(DataError, match="no file or built-in dataset"):
        load_data(str(tmp_path / "missing.npz"))
    with pytest.raises(DataError, match="unsupported extension"):
        (tmp_path / "d.txt").write_text("1")
        load_data(str(tmp_path / "d.txt"))


def test_builtin_datasets():
    digits = load_data("digits")
    assert digits.x.shape == (1797, 64) and digits.y.max() == 9 and digits.x.max() <= 1
    t16 = load_data("loom_test16")
    assert t16.x.shape == (500, 8) and set(np.unique(t16.y)) == {0, 1, 2}


def test_bad_training_configs():
    with pytest.raises(ConfigError, match="epochs must be an integer >= 1"):
        TrainingConfig(epochs=0)
    with pytest.raises(ConfigError, match="loss_type 'hinge' is unknown"):
        TrainingConfig(loss_type="hinge")
    with pytest.raises(ConfigError, match="unknown field"):
        TrainingConfig.from_dict({"epoch": 3})


def test_a_run_config_names_missing_and_unknown_tables():
    from loomdist.run import RunConfig
    with pytest.raises(ConfigError, match=r"config: missing \[data\]; a config needs"):
        RunConfig.from_dict({"network": {}})
    with pytest.raises(ConfigError, match=r"missing \[network\], missing \[data\], "
                                          r"unknown \[netwrok\]"):
        RunConfig.from_dict({"netwrok": {}})


def test_a_target_of_the_wrong_size_is_a_shape_error():
    net = loomdist.Network(0, 1, 1, 1, batch_size=2)
    net.set_layer(0, 0, 0, dense.Spec(3, 2, "tanh"), rng=0)
    with pytest.raises(ShapeError, match=r"train: the target has 5 values, the network's "
                                         r"output has 4 \(2 x 2\); pass one target value"):
        net.train([(np.zeros(6, np.float32), np.zeros(5, np.float32))], TrainingConfig())


def test_loom_train_validates_and_prints(capsys):
    net = small_net()
    x, y = task(30)
    batches = [(x[i:i + 1].ravel(), y[i].ravel()) for i in range(30)]
    cfg = TrainingConfig(epochs=2, learning_rate=0.05, evaluate_every_n=1, verbose=True,
                         validation_inputs=x, validation_targets=y.argmax(axis=1))
    res = net.train(batches, cfg)
    out = capsys.readouterr().out
    assert "=== Training Configuration ===" in out and "Epoch 2/2 - Avg Loss:" in out
    assert "Validation Score:" in out and "✓ Training Complete!" in out
    assert res.eval_metrics is not None and res.eval_metrics.total_samples == 30
    assert "val_score" in res.history[-1]


def test_network_evaluate_matches_loom_fixture():
    import json

    from tests.loomfix import FIXTURES
    data = json.loads((FIXTURES / "evaluation.json").read_text())
    net = loomdist.load_model(FIXTURES / "evaluation.model.json", data["model_id"])
    metrics = net.evaluate(data["inputs"], data["expected_outputs"])
    loom = json.loads((FIXTURES / "evaluation.metrics.json").read_text())
    assert metrics.score == pytest.approx(loom["score"], rel=1e-6)
    assert {k: b.count for k, b in metrics.buckets.items()} == \
        {k: b["count"] for k, b in loom["buckets"].items()}


@pytest.mark.parametrize("loss_type", ["cross_entropy", "mse"])
def test_train_step_asks_the_first_layer_for_no_input_gradient(dense_need_dx, loss_type):
    """train_step drops dL/d(input): the first dense layer skips it (fused CE and plain
    loss), the second computes its dx; the step equals one that computes it."""
    from loomdist.optim import Optimizer
    from loomdist.train import train_step
    x, y = task(16)
    cfg = TrainingConfig(learning_rate=0.05, loss_type=loss_type)
    net = small_net()
    loss, norm = train_step(net, Optimizer(cfg.optim_config()), cfg, x, y, 0.05)
    assert dense_need_dx == [(16, True), (4, False)]  # the 16->3 layer: dense.backward
    ref = small_net()
    out = ref.forward(x)
    ref.zero_grad()
    if loss_type == "mse":
        _, dy = loss_and_grad("mse", out, y)
        ref.backward(dy)
    else:
        _, _, dz = fused_softmax_ce(ref.layer_input(2), y, 1.0, 3)
        ref.backward(dz, skip_last=True)
    want, got = dict(ref.gradients()), dict(net.gradients())  # no clipping: as computed
    assert want.keys() == got.keys()
    for k, g in want.items():
        np.testing.assert_array_equal(got[k], g, err_msg=str(k))
    assert norm == pytest.approx(np.sqrt(sum(float((g * g).sum()) for g in want.values())))
