"""Serves an exported MMIN with KServe's model server, speaking TF Serving's REST predict API.

    python -m mmin_tf.serving --model_name=mmin --model_base_path=saved_models/mmin --port=8501 \
        [--bert_preset=models/bert_large_en_uncased --face_model=models/face.keras]

then `POST http://127.0.0.1:8501/v1/models/mmin:predict` as with
`tensorflow_model_server --rest_api_port=8501 --model_name=mmin --model_base_path=...`, with
feature tensors or with raw media (`audio`, `transcript`, `video`; docs/serving.md), which need
the models the training features were extracted with. Binds 127.0.0.1 unless `--host` says
otherwise; no gRPC server.
"""

from absl import app, flags

_MODEL_NAME = flags.DEFINE_string("model_name", "mmin", "Name in the URL /v1/models/<name>:predict.")
_MODEL_BASE_PATH = flags.DEFINE_string("model_base_path", "saved_models/mmin", "Directory of version dirs.")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to bind.")
_PORT = flags.DEFINE_integer("port", 8501, "HTTP port.")
_BERT_PRESET = flags.DEFINE_string("bert_preset", None, "BERT preset for raw-media transcripts (the training one).")
_FACE_MODEL = flags.DEFINE_string("face_model", None, "Face model for raw-media videos (the training one).")
_MAX_MEDIA_BYTES = flags.DEFINE_integer("max_media_bytes", 50 * 2 ** 20, "Largest audio or video file of a request.")
_MAX_MEDIA_SECONDS = flags.DEFINE_float("max_media_seconds", 60.0, "Longest audio or video of a request.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    # KServe parses sys.argv when imported: import it only after absl has read the flags.
    import kserve
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.protocol.rest.server import RESTServer

    from mmin_tf.serving.media_inputs import MediaLimits
    from mmin_tf.serving.predictor import SavedModelPredictor

    server = kserve.ModelServer(http_port=_PORT.value, enable_grpc=False, workers=1)
    server.register_model(SavedModelPredictor(
        _MODEL_NAME.value, _MODEL_BASE_PATH.value, bert_preset=_BERT_PRESET.value, face_model=_FACE_MODEL.value,
        media_limits=MediaLimits(max_bytes=_MAX_MEDIA_BYTES.value, max_seconds=_MAX_MEDIA_SECONDS.value)))
    rest = RESTServer(
        FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, _PORT.value, workers=1
    )
    rest.config.host = _HOST.value  # KServe hard-codes 0.0.0.0
    rest.run()


if __name__ == "__main__":
    app.run(main)
