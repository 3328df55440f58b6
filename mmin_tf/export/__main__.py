"""Exports a finished training run as the next SavedModel version for TF Serving.

    python -m mmin_tf.export --run_dir=runs/demo/mmin --export_dir=saved_models/mmin

writes saved_models/mmin/<N+1>/ (saved_model.pb, variables/, assets.extra/ warm-up requests);
the version directory appears only when complete.
"""


from absl import app, flags

from mmin_tf import cli

from mmin_tf.export.saved_model import export_run
from mmin_tf.layers.modality_embedder import EncoderRows

_RUN_DIR = flags.DEFINE_string("run_dir", None, "A finished training run directory.", required=True)
_EXPORT_DIR = flags.DEFINE_string("export_dir", "saved_models/mmin", "Model base path (TF Serving's --model_base_path).")
_WARMUP = flags.DEFINE_bool("warmup", True, "Write TF Serving warm-up requests (one per test condition).")
_ENCODER_ROWS = flags.DEFINE_enum_class(
    "encoder_rows", None, EncoderRows,
    "Rows the served encoders run on (default: the trained model's setting, auto unless trained "
    "otherwise; auto resolves on this machine): present for CPU servers, all for GPU servers.",
    case_sensitive=False)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    print(export_run(_RUN_DIR.value, _EXPORT_DIR.value, _WARMUP.value, _ENCODER_ROWS.value))


def run():
    cli.run_main(main, "mmin_tf.export")


if __name__ == "__main__":
    run()
