"""Tests for the synthetic IEMOCAP-shaped corpus (`mmin_tf.data.synthetic`)."""

import collections
import dataclasses

import numpy as np
import pytest

from mmin_tf.data import format as format_lib
from mmin_tf.data import synthetic
from mmin_tf.data.synthetic import IEMOCAP_CLASS_COUNTS, IEMOCAP_LABEL_NAMES, SyntheticConfig
from mmin_tf.modalities import EncoderKind, ModalitySpec

MODALITIES = (
    ModalitySpec("acoustic", "a", 12, EncoderKind.LSTM),
    ModalitySpec("visual", "v", 10, EncoderKind.LSTM),
    ModalitySpec("text", "t", 14, EncoderKind.TEXT_CNN),
)
MEAN_LENGTHS = (("acoustic", 15), ("visual", 5), ("text", 6))


def _config(**kwargs):
    arguments = {"num_utterances": 1000, "modalities": MODALITIES, "mean_lengths": MEAN_LENGTHS}
    arguments.update(kwargs)
    return SyntheticConfig(**arguments)


@pytest.fixture(scope="module")
def corpus():
    """1000 utterances at small dims: the statistical tests below share them."""
    return list(synthetic.generate(_config(seed=3)))


def _mean_features(utterances, name):
    return np.stack([u.features[name].mean(axis=0) for u in utterances]).astype(np.float64)


def test_same_seed_gives_identical_utterances():
    first = list(synthetic.generate(_config(num_utterances=60, seed=7)))
    second = list(synthetic.generate(_config(num_utterances=60, seed=7)))

    assert len(first) == len(second) == 60
    for a, b in zip(first, second):
        assert (a.utterance_id, a.speaker, a.group, a.label, a.source) == (
            b.utterance_id, b.speaker, b.group, b.label, b.source)
        for spec in MODALITIES:
            assert a.features[spec.name].tobytes() == b.features[spec.name].tobytes()


def test_different_seed_gives_different_utterances():
    first = list(synthetic.generate(_config(num_utterances=60, seed=7)))
    second = list(synthetic.generate(_config(num_utterances=60, seed=8)))

    for a, b in zip(first, second):
        for spec in MODALITIES:
            assert a.features[spec.name].tobytes() != b.features[spec.name].tobytes()
    assert [a.label for a in first] != [b.label for b in second]


def test_layout_is_five_groups_of_two_speakers(corpus):
    speakers_by_group = collections.defaultdict(set)
    for utterance in corpus:
        speakers_by_group[utterance.group].add(utterance.speaker)

    assert dict(speakers_by_group) == {
        f"Ses0{g}": {f"Ses0{g}F", f"Ses0{g}M"} for g in range(1, 6)
    }
    assert collections.Counter(u.speaker for u in corpus) == {
        speaker: 100 for speakers in speakers_by_group.values() for speaker in speakers
    }
    assert len({u.utterance_id for u in corpus}) == 1000
    assert all(u.utterance_id.startswith(u.speaker + "_") for u in corpus)


def test_every_speaker_has_every_class_even_when_barely_possible():
    # 40 = 10 speakers x 4 classes: the smallest corpus allowed.
    utterances = list(synthetic.generate(_config(num_utterances=40, seed=1)))

    classes = collections.defaultdict(set)
    for utterance in utterances:
        classes[utterance.speaker].add(utterance.label)
    assert len(classes) == 10
    assert all(labels == {0, 1, 2, 3} for labels in classes.values())


def test_class_proportions_follow_iemocap(corpus):
    counts = np.bincount([u.label for u in corpus], minlength=4)
    expected = np.asarray(IEMOCAP_CLASS_COUNTS) / sum(IEMOCAP_CLASS_COUNTS)

    assert counts.sum() == 1000
    np.testing.assert_allclose(counts / 1000, expected, atol=0.02)
    classes = collections.defaultdict(set)
    for utterance in corpus:
        classes[utterance.speaker].add(utterance.label)
    assert all(labels == {0, 1, 2, 3} for labels in classes.values())


def test_features_follow_the_specs_and_mean_lengths(corpus):
    for utterance in corpus:
        format_lib.validate_utterance(utterance, MODALITIES, len(IEMOCAP_LABEL_NAMES))
        for spec in MODALITIES:
            assert utterance.features[spec.name].dtype == np.float32
    for name, configured in MEAN_LENGTHS:
        lengths = np.array([len(u.features[name]) for u in corpus])
        assert lengths.min() >= 1
        # Log-normal spread (sigma 0.35) around the configured length: mean ~6 % above it.
        assert abs(lengths.mean() / configured - 1) < 0.15, (name, lengths.mean())
        assert lengths.std() > 0


def _log_length_correlation(utterances, first, second):
    return np.corrcoef(
        np.log([len(u.features[first]) for u in utterances]),
        np.log([len(u.features[second]) for u in utterances]),
    )[0, 1]


def test_lengths_are_independent_by_default_and_correlate_with_a_shared_duration():
    # Longer means than the defaults' so that rounding to whole frames hardly matters.
    lengths = (("acoustic", 150), ("visual", 50), ("text", 22))
    shared = list(synthetic.generate(_config(
        num_utterances=600, mean_lengths=lengths, length_spread=0.12, duration_spread=0.33, seed=3)))
    independent = list(synthetic.generate(_config(num_utterances=600, mean_lengths=lengths, seed=3)))
    # Expected correlation of the log-lengths: 0.33^2 / (0.12^2 + 0.33^2) = 0.88.
    assert _log_length_correlation(shared, "acoustic", "visual") == pytest.approx(0.88, abs=0.05)
    assert _log_length_correlation(shared, "acoustic", "text") == pytest.approx(0.88, abs=0.06)
    assert abs(_log_length_correlation(independent, "acoustic", "visual")) < 0.12
    # Marginal spread of each length: sqrt(0.12^2 + 0.33^2) = 0.35, as the independent default.
    for utterances in (shared, independent):
        assert np.std(np.log([len(u.features["acoustic"]) for u in utterances])) == pytest.approx(0.35, abs=0.03)


def test_without_a_duration_spread_corpora_are_those_of_earlier_versions():
    # The shared factor is only drawn when used, so a seed gives the corpus it gave before the
    # option existed (values recorded from that version).
    corpus = list(synthetic.generate(_config(num_utterances=60, seed=5)))
    lengths = [tuple(len(u.features[name]) for name in ("acoustic", "visual", "text")) for u in corpus[:6]]
    assert lengths == [(9, 6, 6), (21, 9, 7), (8, 7, 4), (14, 8, 4), (25, 7, 6), (15, 5, 5)]
    assert corpus[0].features["acoustic"].astype(np.float64).sum() == pytest.approx(7.512927942443639, rel=1e-6)
    assert corpus[59].features["text"].astype(np.float64).sum() == pytest.approx(0.5387998595833778, rel=1e-5)


@pytest.mark.parametrize("field", ["length_spread", "duration_spread"])
def test_negative_spreads_are_rejected(field):
    with pytest.raises(ValueError, match=field):
        _config(**{field: -0.1})


def _held_out_r2(x, y):
    """Least-squares map x -> y (with bias) fitted on the first half, R^2 on the second half."""
    half = len(x) // 2
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    weights = np.linalg.lstsq(design[:half], y[:half], rcond=None)[0]
    residual = y[half:] - design[half:] @ weights
    total = y[half:] - y[half:].mean(axis=0)
    return 1.0 - np.square(residual).sum() / np.square(total).sum()


def test_modalities_predict_each_other(corpus):
    acoustic = _mean_features(corpus, "acoustic")
    visual = _mean_features(corpus, "visual")
    text = _mean_features(corpus, "text")
    shuffled = acoustic[np.random.default_rng(0).permutation(len(acoustic))]

    assert _held_out_r2(acoustic, text) > 0.2
    assert _held_out_r2(visual, text) > 0.15
    assert _held_out_r2(text, acoustic) > 0.2
    # Control: without the shared latent (pairs broken) nothing is predictable.
    assert _held_out_r2(shuffled, text) < 0.05


def _nearest_class_mean_accuracy(features, labels):
    half = len(features) // 2
    means = np.stack([features[:half][labels[:half] == c].mean(axis=0) for c in range(4)])
    distances = np.square(features[half:, None, :] - means[None]).sum(axis=-1)
    return float(np.mean(np.argmin(distances, axis=1) == labels[half:]))


def test_every_modality_carries_class_information(corpus):
    labels = np.array([u.label for u in corpus])
    chance = np.bincount(labels[500:]).max() / 500  # majority class of the held-out half

    accuracy = {
        spec.name: _nearest_class_mean_accuracy(_mean_features(corpus, spec.name), labels)
        for spec in MODALITIES
    }

    assert accuracy["text"] > chance + 0.2, accuracy
    assert accuracy["acoustic"] > chance + 0.15, accuracy
    assert accuracy["visual"] > chance + 0.05, accuracy
    # The class signal is scaled per modality: text strongest, visual weakest.
    assert accuracy["text"] > accuracy["visual"] + 0.1, accuracy


def test_default_config_uses_paper_dims_and_lengths():
    config = SyntheticConfig()
    utterance = next(synthetic.generate(dataclasses.replace(config, num_utterances=40)))

    assert {name: u.shape[1] for name, u in utterance.features.items()} == {
        "acoustic": 130, "visual": 342, "text": 1024,
    }
    assert dict(config.mean_lengths) == {"acoustic": 150, "visual": 50, "text": 22}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_groups": 1}, r"needs >= 2 groups of >= 2 speakers.*num_groups=1"),
        ({"speakers_per_group": 1}, r"speakers_per_group=1"),
        ({"num_utterances": 39}, r"`num_utterances` must be at least 40.*Received: 39"),
        ({"num_groups": 3, "speakers_per_group": 3, "num_utterances": 30},
         r"must be at least 36"),
        ({"mean_lengths": (("acoustic", 15), ("text", 6))},
         r"`mean_lengths` has no entry for modalities \['visual'\]"),
        ({"mean_lengths": (("acoustic", 15), ("visual", 0), ("text", 6))},
         r"`mean_lengths` must be >= 1. Received: \{'visual': 0\}"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _config(**kwargs)


def test_more_speakers_per_group_are_named_distinctly():
    utterances = list(synthetic.generate(
        _config(num_groups=2, speakers_per_group=3, num_utterances=24, seed=0)
    ))
    assert {u.speaker for u in utterances} == {
        "Ses01F", "Ses01M", "Ses012", "Ses02F", "Ses02M", "Ses022",
    }
