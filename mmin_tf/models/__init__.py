"""The served models; importing this package registers them for `keras.saving.load_model`."""

from mmin_tf.models.mctn import MCTN
from mmin_tf.models.mmin import MMIN
from mmin_tf.models.utterance_fusion import UtteranceFusion

__all__ = ["MCTN", "MMIN", "UtteranceFusion"]
