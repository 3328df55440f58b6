"""Model-only users install without the `features` extra: nothing else may need its packages."""

import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURE_PACKAGES = ("apache_beam", "opensmile", "soundfile", "cv2", "keras_hub", "skimage", "safetensors")

BLOCKER = f"""
import importlib.abc, sys
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {FEATURE_PACKAGES!r}:
            raise ImportError(f"{{name}} is not installed (blocked by the test)")
sys.meta_path.insert(0, Blocker())
"""


def _run(code):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", BLOCKER + code], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=180)


def test_the_blocker_blocks():
    result = _run("import apache_beam")
    assert result.returncode != 0 and "blocked by the test" in result.stderr


def test_training_serving_and_prepare_import_and_run_without_the_features_extra(tmp_path):
    out = tmp_path / "synthetic"
    result = _run(
        "import mmin_tf.training, mmin_tf.evaluation, mmin_tf.export.saved_model, mmin_tf.results, mmin_tf.serving.predictor\n"
        "import runpy\n"
        f"sys.argv = ['prepare', '--source=synthetic', '--out={out}', '--num_utterances=40',\n"
        "            '--mean_lengths=acoustic:3,visual:3,text:3']\n"
        "runpy.run_module('mmin_tf.prepare', run_name='__main__')\n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "dataset.json").exists()


def test_the_server_without_the_serving_extra_says_how_to_install_it():
    result = _run(
        "sys.modules['kserve'] = None  # as if the serving extra were not installed\n"
        "import runpy\n"
        "sys.argv = ['serving', '--model_base_path=saved_models/mmin']\n"
        "runpy.run_module('mmin_tf.serving', run_name='__main__')\n")
    assert result.returncode != 0
    assert 'needs KServe, in the project\'s serving extra: pip install -e ".[serving]"' in result.stderr
