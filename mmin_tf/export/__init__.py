"""SavedModel export for TF Serving (`python -m mmin_tf.export`)."""

from mmin_tf.export.saved_model import (
    EXAMPLES_SIGNATURE,
    SERVING_SIGNATURE,
    WARMUP_FILE,
    build_archive,
    export_model,
    export_run,
    next_version,
    warmup_requests,
)

__all__ = [
    "EXAMPLES_SIGNATURE",
    "SERVING_SIGNATURE",
    "WARMUP_FILE",
    "build_archive",
    "export_model",
    "export_run",
    "next_version",
    "warmup_requests",
]
