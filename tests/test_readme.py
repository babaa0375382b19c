"""The README's commands and Python tour stay true."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_first_lines_are_the_two_commands():
    block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert block[0].endswith("pip install -e . && loomdist train examples/digits.toml")
    assert block[1].endswith("pip install -e '.[test]' && python -m pytest -q")


def test_quick_tour_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = re.search(r"## Quick tour\n\n```python\n(.*?)```", README, re.S).group(1)
    exec(compile(code, "README quick tour", "exec"), {})
    assert (tmp_path / "model.json").is_file()
