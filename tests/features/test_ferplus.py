"""Tests for the FER+ reader, on tiny fer2013.csv / fer2013new.csv files written by the tests."""

import os

import cv2
import numpy as np
import pytest

from mmin_tf.data.format import DataError
from mmin_tf.features import ferplus

FER2013_HEADER = "emotion,pixels,Usage"
FERPLUS_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"

# Vote rows (VOTE_COLUMNS order) and what FER+'s majority mode makes of them.
CLEAR_HAPPINESS = (2, 8, 0, 0, 0, 0, 0, 0, 0, 0)
OUTLIERS_DROPPED = (5, 1, 1, 1, 1, 1, 0, 0, 0, 0)  # 5 of 10 is no majority; 5 of the 5 left is
TIE = (4, 0, 0, 4, 2, 0, 0, 0, 0, 0)
HALF = (5, 5, 0, 0, 0, 0, 0, 0, 0, 0)  # exactly half is not more than half
ALL_SINGLE = (1, 1, 1, 1, 1, 1, 1, 1, 1, 1)  # no votes left
UNKNOWN = (4, 0, 0, 0, 0, 0, 0, 0, 6, 0)
NOT_A_FACE = (0, 0, 0, 0, 0, 0, 0, 0, 0, 10)
CONTEMPT = (3, 0, 0, 0, 0, 1, 0, 6, 0, 0)
FEAR = (0, 0, 2, 0, 0, 0, 6, 0, 2, 0)
UNKNOWN_VOTES_COUNT = (0, 0, 2, 0, 0, 0, 5, 0, 3, 0)  # 5 of 7 emotion votes, but not more than half of all 10


def write_release(directory, rows, seed=0):
    """Writes `fer2013.csv` and `fer2013new.csv` for `rows`, each image random 48 x 48 uint8.

    Returns:
        (fer2013.csv path, fer2013new.csv path, the images `(len(rows), 48, 48)` uint8).
    """
    os.makedirs(directory, exist_ok=True)
    images = np.random.default_rng(seed).integers(0, 256, size=(len(rows), 48, 48), dtype=np.uint8)
    fer2013 = [FER2013_HEADER]
    labels = [FERPLUS_HEADER]
    for (usage, name, votes), image in zip(rows, images):
        fer2013.append(f"0,{' '.join(str(value) for value in image.ravel())},{usage}")
        labels.append(",".join([usage, name, *(str(vote) for vote in votes)]))
    paths = (os.path.join(directory, "fer2013.csv"), os.path.join(directory, "fer2013new.csv"))
    for path, lines in zip(paths, (fer2013, labels)):
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    return (*paths, images)


@pytest.mark.parametrize(
    "votes, expected",
    [
        (CLEAR_HAPPINESS, 1),
        (OUTLIERS_DROPPED, 0),
        (TIE, None),
        (HALF, None),
        (ALL_SINGLE, None),
        (UNKNOWN, 8),
        (NOT_A_FACE, 9),
        (CONTEMPT, 7),
        (FEAR, 6),
        (UNKNOWN_VOTES_COUNT, None),
    ],
)
def test_majority_vote_follows_ferplus(votes, expected):
    assert ferplus.majority_vote(votes) == expected


def test_labels_splits_and_exclusions(tmp_path):
    rows = [
        ("Training", "a.png", CLEAR_HAPPINESS),
        ("Training", "b.png", OUTLIERS_DROPPED),
        ("Training", "c.png", TIE),
        ("Training", "d.png", HALF),
        ("Training", "e.png", ALL_SINGLE),
        ("Training", "e2.png", UNKNOWN_VOTES_COUNT),
        ("Training", "f.png", UNKNOWN),
        ("Training", "g.png", NOT_A_FACE),
        ("Training", "", NOT_A_FACE),
        ("PublicTest", "h.png", CONTEMPT),
        ("PublicTest", "", CLEAR_HAPPINESS),  # no image name: excluded whatever the votes
        ("PrivateTest", "i.png", FEAR),
        ("PrivateTest", "j.png", UNKNOWN),
    ]
    fer2013_csv, ferplus_csv, _ = write_release(tmp_path, rows)

    splits = ferplus.read_ferplus(fer2013_csv, ferplus_csv)

    assert list(splits) == ["train", "validation", "test"]
    assert splits["train"].labels.tolist() == [1, 0]
    assert splits["validation"].labels.tolist() == [7]
    assert splits["test"].labels.tolist() == [6]
    assert splits["train"].exclusions == {"no_image_name": 1, "no_majority": 4, "unknown": 1, "not_a_face": 1}
    assert splits["validation"].exclusions == {"no_image_name": 1, "no_majority": 0, "unknown": 0, "not_a_face": 0}
    assert splits["test"].exclusions == {"no_image_name": 0, "no_majority": 0, "unknown": 1, "not_a_face": 0}
    assert splits["train"].summary() == {
        "num_images": 2,
        "label_counts": {"neutral": 1, "happiness": 1, "surprise": 0, "sadness": 0, "anger": 0,
                         "disgust": 0, "fear": 0, "contempt": 0},
        "exclusions": {"no_image_name": 1, "no_majority": 4, "unknown": 1, "not_a_face": 1},
    }


def test_images_are_resized_to_64_as_float32(tmp_path):
    rows = [("Training", "a.png", CLEAR_HAPPINESS), ("Training", "b.png", UNKNOWN), ("PrivateTest", "c.png", CONTEMPT)]
    fer2013_csv, ferplus_csv, images = write_release(tmp_path, rows)

    splits = ferplus.read_ferplus(fer2013_csv, ferplus_csv)

    train, test = splits["train"].images, splits["test"].images
    assert train.shape == (1, 64, 64, 1) and train.dtype == np.float32
    assert splits["validation"].images.shape == (0, 64, 64, 1)
    np.testing.assert_array_equal(train[0, :, :, 0], cv2.resize(images[0], (64, 64)).astype(np.float32))
    np.testing.assert_array_equal(test[0, :, :, 0], cv2.resize(images[2], (64, 64)).astype(np.float32))


def test_column_order_of_fer2013_does_not_matter(tmp_path):
    fer2013_csv, ferplus_csv, images = write_release(tmp_path, [("Training", "a.png", CONTEMPT)])
    with open(fer2013_csv) as f:
        _, line = f.read().splitlines()
    emotion, pixels, usage = line.split(",")
    with open(fer2013_csv, "w") as f:
        f.write(f"Usage,emotion,pixels\n{usage},{emotion},{pixels}\n")

    split = ferplus.read_ferplus(fer2013_csv, ferplus_csv)["train"]

    assert split.labels.tolist() == [7]
    np.testing.assert_array_equal(split.images[0, :, :, 0], cv2.resize(images[0], (64, 64)))


# Bad input ------------------------------------------------------------------------------------


def _replace_line(path, line_number, text):
    with open(path) as f:
        lines = f.read().splitlines()
    lines[line_number - 1] = text
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _release(tmp_path):
    return write_release(tmp_path, [("Training", "a.png", CLEAR_HAPPINESS), ("PublicTest", "b.png", CONTEMPT)])[:2]


def test_missing_file(tmp_path):
    _, ferplus_csv = _release(tmp_path)
    missing = str(tmp_path / "nowhere.csv")
    with pytest.raises(DataError, match=r"nowhere\.csv: no such file"):
        ferplus.read_ferplus(missing, ferplus_csv)


def test_empty_file(tmp_path):
    fer2013_csv, ferplus_csv = _release(tmp_path)
    open(ferplus_csv, "w").close()
    with pytest.raises(DataError, match=r"fer2013new\.csv, line 1: empty file"):
        ferplus.read_ferplus(fer2013_csv, ferplus_csv)


@pytest.mark.parametrize(
    "which, header, missing",
    [
        ("fer2013", "emotion,pixel,Usage", r"\['pixels'\]"),
        ("ferplus", FERPLUS_HEADER.replace(",NF", ",not_face"), r"\['NF'\]"),
    ],
)
def test_wrong_columns(tmp_path, which, header, missing):
    fer2013_csv, ferplus_csv = _release(tmp_path)
    path = fer2013_csv if which == "fer2013" else ferplus_csv
    _replace_line(path, 1, header)
    with pytest.raises(DataError, match=rf"{os.path.basename(path)}, line 1: missing columns {missing}"):
        ferplus.read_ferplus(fer2013_csv, ferplus_csv)


@pytest.mark.parametrize("which", ["fer2013", "ferplus"])
def test_row_with_missing_fields(tmp_path, which):
    fer2013_csv, ferplus_csv = _release(tmp_path)
    path = fer2013_csv if which == "fer2013" else ferplus_csv
    _replace_line(path, 3, "PublicTest,b.png")
    with pytest.raises(DataError, match=rf"{os.path.basename(path)}, line 3: 2 fields; the header has"):
        ferplus.read_ferplus(fer2013_csv, ferplus_csv)


def test_more_images_than_labels(tmp_path):
    fer2013_csv, ferplus_csv = _release(tmp_path)
    _replace_line(ferplus_csv, 3, "")  # blank line: one label row fewer
    with pytest.raises(DataError, match=r"fer2013\.csv has more image rows than the 1 rows of .*first extra: line 3"):
        ferplus.read_ferplus(fer2013_csv, ferplus_csv)


def test_fewer_images_than_labels(tmp_path):
    fer2013_csv, ferplus_csv = _release(tmp_path)
    _replace_line(fer2013_csv, 3, "")
    with pytest.raises(DataError, match=r"fer2013\.csv has 1 image rows but .*fer2013new\.csv has 2"):
        ferplus.read_ferplus(fer2013_csv, ferplus_csv)


def test_unknown_usage(tmp_path):
    fer2013_csv, ferplus_csv = _release(tmp_path)
    with open(fer2013_csv) as f:
        line = f.read().splitlines()[2]
    _replace_line(fer2013_csv, 3, line.replace("PublicTest", "Validation"))
    with pytest.raises(DataError, match=r"fer2013\.csv, line 3: Usage must be one of .*Received: 'Validation'"):
        ferplus.read_ferplus(fer2013_csv, ferplus_csv)


def test_usage_differs_between_the_files(tmp_path):
    fer2013_csv, ferplus_csv = _release(tmp_path)
    _replace_line(ferplus_csv, 3, "PrivateTest,b.png," + ",".join(str(v) for v in CONTEMPT))
    message = r"fer2013\.csv, line 3: Usage 'PublicTest' but .*fer2013new\.csv, line 3 says 'PrivateTest'"
    with pytest.raises(DataError, match=message):
        ferplus.read_ferplus(fer2013_csv, ferplus_csv)


@pytest.mark.parametrize("vote", ["-1", "1.5", "x"])
def test_votes_that_are_not_counts(tmp_path, vote):
    fer2013_csv, ferplus_csv = _release(tmp_path)
    _replace_line(ferplus_csv, 2, f"Training,a.png,{vote},8,0,0,0,0,0,0,0,0")
    with pytest.raises(DataError, match=r"fer2013new\.csv, line 2: vote counts must be non-negative integers"):
        ferplus.read_ferplus(fer2013_csv, ferplus_csv)


@pytest.mark.parametrize(
    "pixels",
    [" ".join(["7"] * 2303), " ".join(["7"] * 2305), " ".join(["7"] * 2303 + ["7.5"]), " ".join(["x"] * 2304)],
)
def test_pixels_that_are_not_2304_integers(tmp_path, pixels):
    fer2013_csv, ferplus_csv = _release(tmp_path)
    _replace_line(fer2013_csv, 2, f"0,{pixels},Training")
    message = r"fer2013\.csv, line 2: `pixels` must be 2304 space-separated integers in 0\.\.255"
    with pytest.raises(DataError, match=message):
        ferplus.read_ferplus(fer2013_csv, ferplus_csv)


@pytest.mark.parametrize("value", ["256", "-3"])
def test_pixel_outside_0_255(tmp_path, value):
    fer2013_csv, ferplus_csv = _release(tmp_path)
    _replace_line(fer2013_csv, 2, f"0,{' '.join(['7'] * 2303 + [value])},Training")
    with pytest.raises(DataError, match=rf"fer2013\.csv, line 2: pixel value {value} is outside 0\.\.255"):
        ferplus.read_ferplus(fer2013_csv, ferplus_csv)
