"""The assessment harness: environment, data, networks, clocks, protocols, CLI, published."""

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from loomdist.cli import main
from loomdist.errors import ConfigError
from loomdist.tween.assess import published as pub
from loomdist.tween.assess.adapt import PROTOCOLS, AdaptProtocol, run_adaptation, run_config
from loomdist.tween.assess.clock import DeterministicClock, WallClock, make_clock
from loomdist.tween.assess.env import AVOID, ChaseEnv, t16_data
from loomdist.tween.assess.nets import FACTORIES, INPUT_SIZES, make_net, t17_net
from loomdist.tween.assess.run import AssessConfig
from loomdist.tween.assess.tables import RUNS_SCHEMA, TEST16_SCHEMA, WINDOWS_SCHEMA


def _env(agent, target, task=0):
    e = ChaseEnv(np.random.default_rng(0))
    e.agent, e.target, e.task = (np.array(agent, np.float32), np.array(target, np.float32),
                                 task)
    return e


@pytest.mark.parametrize("target,chase,avoid", [((0.9, 0.6), 3, 2), ((0.1, 0.6), 2, 3),
                                                ((0.6, 0.9), 0, 1), ((0.6, 0.1), 1, 0)])
def test_optimal_action_table(target, chase, avoid):
    assert _env((0.5, 0.5), target).optimal_action() == chase
    assert _env((0.5, 0.5), target, AVOID).optimal_action() == avoid


def test_observation_execute_and_drift():
    e = _env((0.5, 0.5), (0.8, 0.1), AVOID)
    obs = e.observation(20)
    np.testing.assert_allclose(obs[:8], [0.5, 0.5, 0.8, 0.1, 0.3, -0.4, 0.5, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(obs[8:16], obs[:8])
    e.agent = np.array([1.0, 0.0], np.float32)
    e.execute(3)
    e.execute(1)
    np.testing.assert_array_equal(e.agent, [1.0, 0.0])   # clamped to [0, 1]
    for _ in range(2000):
        e.drift()
    assert 0.1 <= e.target.min() and e.target.max() <= 0.9


def test_test16_class_frequencies_are_loom_s():
    x, y = t16_data(8, np.random.default_rng(0), n=20000)
    assert x.shape == (20000, 8) and x.min() >= -1 and x.max() <= 1
    np.testing.assert_allclose(np.bincount(y) / y.size, [0.484, 0.258, 0.258], atol=0.01)


@pytest.mark.parametrize("kind", sorted(FACTORIES))
@pytest.mark.parametrize("depth", [3, 5, 9])
def test_network_factories(kind, depth):
    t16 = kind in ("Norm", "SwiGLU")
    net = make_net(kind, depth, 0, t16=t16)
    assert net.total_layers == depth
    x = np.zeros(INPUT_SIZES[kind], np.float32)
    assert net.forward(x).shape == ((3 if t16 else 4),)
    assert net.layers[-1].spec.activation == "sigmoid"


def test_factory_init_rules():
    conv = make_net("Conv2D", 3, 0).layers[0].params["kernel"]
    assert conv.shape == (8, 1, 3, 3) and np.abs(conv).max() <= 0.2
    mha = make_net("Attn", 3, 0).layers[0].params
    assert np.abs(mha["q_weights"]).max() <= 0.025 and np.abs(mha["output_weight"]).max() \
        <= 0.0125
    d = make_net("Dense", 9, 0, t16=True)
    assert [s.spec.activation for s in d.layers[1:-1]] == ["leaky_relu", "tanh"] * 3 + \
        ["leaky_relu"]
    assert [s.spec.output_height for s in d.layers] == [64, 48, 32, 24, 16, 64, 48, 32, 3]
    assert [s.spec.output_height for s in t17_net(0).layers] == [32, 64, 64, 64, 32, 4]
    with pytest.raises(ConfigError, match="unknown network 'Foo'"):
        make_net("Foo", 3, 0)
    with pytest.raises(ConfigError, match="depth must be an int >= 3"):
        make_net("Dense", 2, 0)


def test_clocks():
    c = DeterministicClock(4)
    for _ in range(6):
        c.tick()
    assert c.now() == 1.5
    c.start()
    assert c.now() == 0.0 and make_clock("wall").name == "wall"
    with pytest.raises(ConfigError, match="outputs_per_sec must be an int >= 1"):
        DeterministicClock(0)
    with pytest.raises(ConfigError, match="unknown clock 'sundial'"):
        make_clock("sundial")


def test_test18_windows_and_task_changes():
    run = run_config("Dense", 3, "StepBP", PROTOCOLS[18], DeterministicClock(30), seed=1)
    assert run.outputs.tolist() == [30] * 10
    c1, c2 = run.task_changes
    assert (c1["pre_change_window"], c1["post_change_window"]) == (2, 3)
    assert (c2["pre_change_window"], c2["post_change_window"]) == (5, 6)
    assert run.tasks == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    assert c1["post_accuracy"] == run.accuracy[3]


def test_wall_clock_run_fills_windows_by_time():
    proto = AdaptProtocol(17, 0.6, 3, ((0.2, AVOID), (0.4, 0)), True)
    run = run_adaptation(t17_net(0), "TweenChain", proto, WallClock(), np.random.default_rng(0))
    assert run.outputs.min() > 0 and run.clock == "wall"
    assert [c["post_change_window"] for c in run.task_changes] == [1, 2]
    assert 0.6 <= run.wall_s < 5 and run.outputs_per_sec > 0


@pytest.mark.parametrize("kind", ["Conv2D", "RNN", "LSTM", "Attn"])
def test_every_adaptation_network_runs(kind):
    run = run_config(kind, 3, "StepTweenChain", PROTOCOLS[19], DeterministicClock(5), seed=0)
    assert run.total_outputs == 50 and run.model_name == f"{kind}-3L"


def test_assess_config_errors():
    with pytest.raises(ConfigError, match="test must be 16, 17, 18 or 19"):
        AssessConfig(15)
    with pytest.raises(ConfigError, match="clock must be one of"):
        AssessConfig(17, clock="moon")
    with pytest.raises(ConfigError, match="runs and ops must be >= 1"):
        AssessConfig(19, runs=0)
    with pytest.raises(ConfigError, match="unknown mode"):
        AssessConfig(17, modes=("Nope",))


def test_published_tables_are_complete():
    assert all(len(v) == 15 for v in pub.TEST17_WINDOWS.values())
    assert len(pub.TEST19_MEAN_STD) == 15
    assert all(len(v) == 3 for v in pub.TEST19_MEAN_STD.values())
    assert pub.published_test16("Dense-3L") == {"NormalBP": 98.8, "NormTween": 100.0,
                                                "StepTween": 98.4, "StepTweenChain": 99.0,
                                                "StepBP": 72.2}


def _cli(args):
    return CliRunner().invoke(main, ["tween", "assess", *args])


def test_cli_test18_writes_tables_and_png(tmp_path):
    res = _cli(["--test", "18", "--nets", "Dense", "--depths", "3", "--modes", "STC,NormalBP",
                "--outputs-per-sec", "30", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "Dense-3L — ACCURACY OVER TIME" in res.output and "vs LOOM" in res.output
    assert pq.read_table(tmp_path / "windows.parquet").schema.equals(WINDOWS_SCHEMA)
    runs = pq.read_table(tmp_path / "runs.parquet")
    assert runs.schema.equals(RUNS_SCHEMA) and runs.num_rows == 2
    assert (tmp_path / "accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_test19_and_test16(tmp_path):
    res = _cli(["--test", "19", "--nets", "Dense", "--depths", "3", "--modes", "StepBP",
                "--runs", "2", "--outputs-per-sec", "20"])
    assert res.exit_code == 0, res.output
    assert "(±" in res.output and "43.8 (±10.7)" in res.output
    res = _cli(["--test", "16", "--nets", "Dense", "--depths", "3", "--modes",
                "NormTween,StepBP", "--ops", "600", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    t = pq.read_table(tmp_path / "test16.parquet")
    assert t.schema.equals(TEST16_SCHEMA) and t.num_rows == 2


def test_cli_reports_bad_mode():
    res = _cli(["--test", "17", "--modes", "Nope"])
    assert res.exit_code == 1 and "unknown mode 'Nope'" in res.output
