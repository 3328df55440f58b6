"""Serves an exported MMIN with KServe's model server, speaking TF Serving's REST predict API.

    python -m mmin_tf.serving --model_name=mmin --model_base_path=saved_models/mmin --port=8501 \
        [--poll_seconds=1 --max_request_bytes=134217728 --enable_batching] \
        [--tensorflow_intra_op_parallelism=1 --tensorflow_inter_op_parallelism=2] \
        [--bert_preset=models/bert_large_en_uncased --face_model=models/face.keras]

then `POST http://127.0.0.1:8501/v1/models/mmin:predict` as with
`tensorflow_model_server --rest_api_port=8501 --model_name=mmin --model_base_path=...`, with
feature tensors or with raw media (`audio`, `transcript`, `video`; docs/serving.md), which need
the models the training features were extracted with. As TF Serving, the newest complete version
serves and new versions are picked up every `--poll_seconds` (loaded and warmed up first; the
`x-model-version` response header names the version that answered). Binds 127.0.0.1 unless
`--host` says otherwise; no gRPC server.
"""

from absl import app, flags, logging

_MODEL_NAME = flags.DEFINE_string("model_name", "mmin", "Name in the URL /v1/models/<name>:predict.")
_MODEL_BASE_PATH = flags.DEFINE_string("model_base_path", "saved_models/mmin", "Directory of version dirs.")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to bind (0.0.0.0: every interface).")
_PORT = flags.DEFINE_integer("port", 8501, "HTTP port.")
_POLL_SECONDS = flags.DEFINE_float(
    "poll_seconds", 1.0, "Seconds between looks for new or removed versions (TF Serving's "
    "--file_system_poll_wait_seconds); 0: load once at start.", lower_bound=0)
_MAX_REQUEST_BYTES = flags.DEFINE_integer(
    "max_request_bytes", 128 * 2 ** 20, "Largest request body; larger ones get HTTP 413. The default fits a raw-media "
    "request with audio and video at the default --max_media_bytes (base64).", lower_bound=1)
_ENABLE_BATCHING = flags.DEFINE_bool(
    "enable_batching", False, "Merge concurrent serving_default requests into one model call (TF Serving's flag; "
    "benchmarks/README.md has the measured effect).")
_MAX_BATCH_SIZE = flags.DEFINE_integer("max_batch_size", 8, "With batching: examples per merged call.", lower_bound=1)
_BATCH_TIMEOUT_MS = flags.DEFINE_float(
    "batch_timeout_ms", 2.0, "With batching: the longest a request waits for others to join it.", lower_bound=0)
_BERT_PRESET = flags.DEFINE_string("bert_preset", None, "BERT preset for raw-media transcripts (the training one).")
_FACE_MODEL = flags.DEFINE_string("face_model", None, "Face model for raw-media videos (the training one).")
_MAX_MEDIA_BYTES = flags.DEFINE_integer("max_media_bytes", 50 * 2 ** 20, "Largest audio or video file of a request.")
_MAX_MEDIA_SECONDS = flags.DEFINE_float("max_media_seconds", 60.0, "Longest audio or video of a request.")
_INTRA_OP_THREADS = flags.DEFINE_integer(
    "tensorflow_intra_op_parallelism", 0, "Threads one TensorFlow op may use (TF Serving's flag); 0: TensorFlow's "
    "choice. On 2 cores, 1 with --tensorflow_inter_op_parallelism=2 answers faster (benchmarks/README.md).",
    lower_bound=0)
_INTER_OP_THREADS = flags.DEFINE_integer(
    "tensorflow_inter_op_parallelism", 0, "TensorFlow ops run at once (TF Serving's flag); 0: TensorFlow's choice.",
    lower_bound=0)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    # KServe parses sys.argv when imported: import it only after absl has read the flags.
    try:
        import kserve  # noqa: F401
    except ImportError:
        raise app.UsageError(
            "python -m mmin_tf.serving needs KServe, in the project's serving extra: pip install -e \".[serving]\"")
    import tensorflow as tf

    from mmin_tf.serving import http
    from mmin_tf.serving.batching import BatchingOptions
    from mmin_tf.serving.media_inputs import MediaLimits
    from mmin_tf.serving.predictor import BatchingPredictor, SavedModelPredictor

    # Before anything runs a TensorFlow op: the thread pools are made with the first one.
    tf.config.threading.set_intra_op_parallelism_threads(_INTRA_OP_THREADS.value)
    tf.config.threading.set_inter_op_parallelism_threads(_INTER_OP_THREADS.value)
    logging.info("TensorFlow thread pools: intra-op %s, inter-op %s",
                 _INTRA_OP_THREADS.value or "TensorFlow's choice", _INTER_OP_THREADS.value or "TensorFlow's choice")
    options = dict(bert_preset=_BERT_PRESET.value, face_model=_FACE_MODEL.value,
                   media_limits=MediaLimits(max_bytes=_MAX_MEDIA_BYTES.value, max_seconds=_MAX_MEDIA_SECONDS.value))
    if _ENABLE_BATCHING.value:
        options["batching"] = BatchingOptions(_MAX_BATCH_SIZE.value, _BATCH_TIMEOUT_MS.value)
    predictor = (BatchingPredictor if _ENABLE_BATCHING.value else SavedModelPredictor)(
        _MODEL_NAME.value, _MODEL_BASE_PATH.value, **options)
    predictor.watch(_POLL_SECONDS.value)
    http.rest_server(predictor, _HOST.value, _PORT.value, _MAX_REQUEST_BYTES.value).run()


if __name__ == "__main__":
    app.run(main)
