"""Files appear whole or not at all."""

import json
import os

import pytest

from mmin_tf import atomic_files


def test_write_json_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    atomic_files.write_json(str(path), {"ua": 0.5})
    assert json.loads(path.read_text()) == {"ua": 0.5}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "best.keras"
    path.write_text("previous best")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_files.replacing(str(path), suffix=".keras") as temporary:
            assert temporary.endswith(".keras") and os.path.dirname(temporary) == str(tmp_path)
            with open(temporary, "w") as f:
                f.write("half a model")
            raise RuntimeError("disk full")
    assert path.read_text() == "previous best"
    assert os.listdir(tmp_path) == ["best.keras"]
