"""openSMILE ComParE LLD + delta features."""

import numpy as np
import pytest
import tensorflow as tf  # imported before openSMILE on purpose: the order that corrupted the heap

from mmin_tf.features import acoustic, media
from mmin_tf.features.acoustic import AcousticExtractor, AcousticFeatureSet, AcousticSettings
from mmin_tf.features.media import MediaError
from tests import media_fixtures

del tf


@pytest.fixture(scope="module")
def tone(tmp_path_factory):
    return media.read_audio(media_fixtures.write_tone(tmp_path_factory.mktemp("tone") / "a.wav", seconds=2.0), 16000)


def test_one_frame_per_100_ms_by_default(tone):
    features = AcousticExtractor().extract(tone)
    assert features.dtype == np.float32
    assert features.shape == (20, 130)  # 2 s of 10 ms frames (60 ms windows), downsampled by 10
    assert np.all(np.isfinite(features))


def test_10_ms_frames_join_descriptors_and_deltas_on_their_start(tone):
    opensmile = acoustic.import_opensmile()
    extractor = AcousticExtractor(AcousticSettings(downsample=1))
    features = extractor.extract(tone)
    descriptors = opensmile.Smile(opensmile.FeatureSet.ComParE_2016, opensmile.FeatureLevel.LowLevelDescriptors)
    deltas = opensmile.Smile(opensmile.FeatureSet.ComParE_2016, opensmile.FeatureLevel.LowLevelDescriptors_Deltas)
    lld = descriptors.process_signal(tone, 16000)
    delta = deltas.process_signal(tone, 16000)
    assert len(lld) != len(delta)  # the rows do not line up one to one: a plain join is wrong
    starts = lld.index.get_level_values("start").total_seconds()
    assert features.shape == (len(features), 130) and len(features) <= len(lld)
    # Frame k is the LLDs and the deltas that start at k * 10 ms.
    for k in (0, 7, len(features) - 1):
        row = int(np.argmin(np.abs(starts - k * 0.01)))
        np.testing.assert_allclose(features[k, :65], lld.to_numpy()[row], rtol=1e-6)
        delta_starts = delta.index.get_level_values("start").total_seconds()
        first = int(np.flatnonzero(np.isclose(delta_starts, k * 0.01))[0])
        np.testing.assert_allclose(features[k, 65:], delta.to_numpy()[first], rtol=1e-6, atol=1e-12)


def test_downsampling_is_a_polyphase_resampling_of_the_10_ms_frames(tone):
    from scipy import signal

    full = AcousticExtractor(AcousticSettings(downsample=1)).extract(tone)
    np.testing.assert_allclose(
        AcousticExtractor().extract(tone), signal.resample_poly(full.astype(np.float64), 1, 10, axis=0), rtol=1e-5, atol=1e-5)


def test_is13_is_another_configuration_with_130_values(tone):
    compare = AcousticExtractor().extract(tone)
    is13 = AcousticExtractor(AcousticSettings(AcousticFeatureSet.IS13_COMPARE)).extract(tone)
    assert is13.shape == compare.shape
    assert not np.allclose(is13, compare)


def test_samples_at_full_scale_are_clipped_not_wrapped(tone):
    extractor = AcousticExtractor()
    loud = np.clip(tone * 10, -1.5, 1.5)  # beyond full scale
    np.testing.assert_allclose(extractor.extract(loud), extractor.extract(np.clip(loud, -1, 32767 / 32768)))
    # Unclipped, openSMILE's int16 cast would wrap +1.0 around to -32768.
    assert (np.float32(1.0) * 32768).astype(np.int16) == -32768


def test_audio_too_short_for_a_frame_is_an_error():
    with pytest.raises(MediaError, match="clip.wav: 0.030 s of audio is too short for one openSMILE frame"):
        AcousticExtractor().extract(np.zeros(480, np.float32), "clip.wav")


def test_settings_round_trip_and_validation():
    settings = AcousticSettings(AcousticFeatureSet.IS13_COMPARE, 22050, 1)
    assert AcousticSettings.from_json(settings.to_json()) == settings
    assert AcousticSettings().frame_seconds == pytest.approx(0.1)
    with pytest.raises(ValueError, match="`downsample` must be >= 1"):
        AcousticSettings(downsample=0)
    with pytest.raises(ValueError, match="`sample_rate` must be >= 8000"):
        AcousticSettings(sample_rate=100)
    with pytest.raises(TypeError, match="must be an AcousticFeatureSet"):
        AcousticSettings(feature_set="ComParE_2016")
