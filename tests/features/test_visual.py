"""Face detection in frames and Denseface features of a video span."""

import keras
import numpy as np
import pytest

from mmin_tf.data.media_manifest import FaceRegion
from mmin_tf.features import media, visual
from mmin_tf.features.faces import FaceDetectionSettings, FaceDetector
from mmin_tf.features.visual import VisualExtractor, VisualSettings
from tests import media_fixtures


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


def test_the_astronaut_s_face_is_found_and_cropped(detector):
    face = detector.largest_face(media_fixtures.face_image())
    assert face is not None and face.shape == (64, 64) and face.dtype == np.uint8
    assert detector.largest_face(media_fixtures.blank_frame()) is None


def test_the_largest_face_is_kept(detector):
    small = np.ascontiguousarray(np.fliplr(media_fixtures.face_image(192)))  # mirrored: tells the crops apart
    large = media_fixtures.face_image(256)
    frame = np.full((256, 448), 128, np.uint8)
    frame[:, :256] = large
    frame[32:224, 256:] = small
    crop = detector.largest_face(frame)
    # The crop is the large face: it matches the large image's own crop, not the small one's.
    assert np.abs(crop.astype(int) - detector.largest_face(large).astype(int)).mean() < \
        np.abs(crop.astype(int) - detector.largest_face(small).astype(int)).mean()


def test_the_face_is_searched_inside_the_region_only(detector):
    frame = media_fixtures.side_by_side(media_fixtures.blank_frame(), media_fixtures.face_image())
    assert detector.largest_face(frame, FaceRegion(0.5, 0, 1, 1)) is not None
    assert detector.largest_face(frame, FaceRegion(0, 0, 0.5, 1)) is None
    assert detector.largest_face(frame) is not None


def test_detection_settings_validate_and_round_trip():
    settings = FaceDetectionSettings(1.2, 4, 20, 48)
    assert FaceDetectionSettings.from_json(settings.to_json()) == settings
    with pytest.raises(ValueError, match="`scale_factor` must be > 1"):
        FaceDetectionSettings(scale_factor=1.0)
    with pytest.raises(ValueError, match="`min_face_size` and `face_size` >= 1"):
        FaceDetectionSettings(min_face_size=0)


def test_frames_with_a_face_give_one_feature_each(face_model, face_video):
    extractor = VisualExtractor(face_model)
    features = extractor.extract(face_video)
    assert features.shape == (5, extractor.feature_dim) and features.dtype == np.float32
    assert extractor.feature_dim == visual.face_model_feature_dim(face_model) == 48
    # Each row is the face model's features of that frame's crop.
    model = keras.saving.load_model(face_model)
    faces, sampled = extractor.faces(face_video)
    assert sampled == 8 and faces.shape == (5, 64, 64)
    expected = model(faces[:, :, :, None].astype(np.float32))["features"]
    np.testing.assert_allclose(features, expected, atol=1e-5)


def test_span_region_and_frame_rate(face_model, face_video):
    extractor = VisualExtractor(face_model, VisualSettings(frame_rate=5))
    assert len(extractor.extract(face_video)) == 3  # frames 0, 2, 4 have a face; 6 does not
    assert len(VisualExtractor(face_model).extract(face_video, start=0.3, end=0.8)) == 2
    assert len(VisualExtractor(face_model).extract(face_video, region=FaceRegion(0, 0, 0.5, 1))) == 0


def test_batches_do_not_change_the_features(face_model, face_video):
    one = VisualExtractor(face_model, batch_size=1).extract(face_video)
    np.testing.assert_allclose(one, VisualExtractor(face_model, batch_size=64).extract(face_video), atol=1e-5)


def test_a_face_model_that_cannot_load_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VisualExtractor(str(tmp_path / "none.keras"))
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a model")
    with pytest.raises(FileNotFoundError, match="broken.keras' cannot be loaded"):
        VisualExtractor(str(broken))


def test_settings_round_trip_and_validation():
    settings = VisualSettings(frame_rate=10, detection=FaceDetectionSettings(min_neighbors=5))
    assert VisualSettings.from_json(settings.to_json()) == settings
    with pytest.raises(ValueError, match="`frame_rate` must be positive or None"):
        VisualSettings(frame_rate=0)


def test_no_frames_in_the_span_is_an_error(face_model, face_video):
    with pytest.raises(media.MediaError, match="outside"):
        VisualExtractor(face_model).extract(face_video, start=5)
