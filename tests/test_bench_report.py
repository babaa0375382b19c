"""What every benchmark report shares (loomdist.bench): atomic JSON, the machine record."""

import json

import numpy as np

from loomdist.bench import machine_info, write_json


def test_write_json_turns_numpy_into_json_and_replaces_whole_files(tmp_path):
    path = tmp_path / "sub" / "report.json"
    path.parent.mkdir()
    path.write_text('{"old": true}')
    got = write_json({"a": np.arange(3, dtype=np.int64), "s": np.float32(0.5),
                      "n": np.int64(7), "p": tmp_path}, path)
    assert got == path
    assert json.loads(path.read_text()) == {"a": [0, 1, 2], "s": 0.5, "n": 7,
                                            "p": str(tmp_path)}
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]  # no temp file left


def test_machine_info_without_ray_records_cores_blas_and_time():
    info = machine_info()
    assert info["ray_cpus"] is None and info["ray_version"] is None
    assert info["cores"] >= 1 and info["cpu_count"] >= info["cores"]
    assert info["blas"] and len(info["loadavg"]) == 3
    json.dumps(info)
