"""Tests for `mmin_tf.modalities`: specs, missing conditions and condition names."""

import itertools

import pytest

from mmin_tf import modalities as modalities_lib
from mmin_tf.modalities import (
    DEFAULT_MODALITIES,
    EncoderKind,
    ModalitySpec,
    evaluation_conditions,
    missing_conditions,
    parse_condition,
)


def _spec(name, code, dim=2, encoder=EncoderKind.LSTM):
    return ModalitySpec(name, code, dim, encoder)


def test_default_missing_conditions_are_the_papers_six():
    conditions = missing_conditions(DEFAULT_MODALITIES)

    assert [(c.name, c.available) for c in conditions] == [
        ("a", (True, False, False)),
        ("v", (False, True, False)),
        ("t", (False, False, True)),
        ("av", (True, True, False)),
        ("at", (True, False, True)),
        ("vt", (False, True, True)),
    ]
    assert not any(c.is_full for c in conditions)


def test_evaluation_conditions_append_full():
    conditions = evaluation_conditions(DEFAULT_MODALITIES)

    assert [c.name for c in conditions] == ["a", "v", "t", "av", "at", "vt", "avt"]
    assert conditions[-1].available == (True, True, True)
    assert conditions[-1].is_full
    assert conditions[:-1] == missing_conditions(DEFAULT_MODALITIES)


def test_default_specs_have_the_papers_dims():
    assert [(s.name, s.code, s.feature_dim, s.encoder) for s in DEFAULT_MODALITIES] == [
        ("acoustic", "a", 130, EncoderKind.LSTM),
        ("visual", "v", 342, EncoderKind.LSTM),
        ("text", "t", 1024, EncoderKind.TEXT_CNN),
    ]
    assert [s.length_key for s in DEFAULT_MODALITIES] == [
        "acoustic_length", "visual_length", "text_length",
    ]


def test_two_modalities():
    pair = (_spec("speech", "s"), _spec("face", "f"))

    assert [(c.name, c.available) for c in missing_conditions(pair)] == [
        ("s", (True, False)),
        ("f", (False, True)),
    ]
    assert [c.name for c in evaluation_conditions(pair)] == ["s", "f", "sf"]


def test_four_modalities_give_every_nonempty_proper_subset_in_configured_order():
    # Codes deliberately not in alphabetical order: names follow the configured order.
    four = (_spec("wearable", "w"), _spec("acoustic", "a"), _spec("text", "t"), _spec("eeg", "e"))

    conditions = missing_conditions(four)

    assert len(conditions) == 14  # 2**4 - 2
    assert len({c.available for c in conditions}) == 14
    expected = [
        "".join(spec.code for spec in subset)
        for size in (1, 2, 3)
        for subset in itertools.combinations(four, size)
    ]
    assert [c.name for c in conditions] == expected
    assert expected[:5] == ["w", "a", "t", "e", "wa"]
    for c in conditions:
        assert c.name == "".join(s.code for s, flag in zip(four, c.available) if flag)
        assert 0 < sum(c.available) < 4
    assert evaluation_conditions(four)[-1].name == "wate"


@pytest.mark.parametrize("name", ["at", "ta", "tva", "v", "vat"])
def test_parse_condition_accepts_any_letter_order(name):
    condition = parse_condition(name, DEFAULT_MODALITIES)

    codes = [s.code for s in DEFAULT_MODALITIES]
    assert condition.available == tuple(code in name for code in codes)
    assert condition.name == "".join(code for code in codes if code in name)


def test_parse_condition_round_trips_every_evaluation_condition():
    for condition in evaluation_conditions(DEFAULT_MODALITIES):
        assert parse_condition(condition.name, DEFAULT_MODALITIES) == condition


@pytest.mark.parametrize("name", ["", "x", "ax", "aa", "ata", "A", "a t"])
def test_parse_condition_rejects_unknown_duplicate_or_empty_letters(name):
    with pytest.raises(ValueError, match=r"non-empty set of distinct modality letters from 'avt'"):
        parse_condition(name, DEFAULT_MODALITIES)


def test_condition_errors():
    with pytest.raises(ValueError, match=r"one availability flag per modality \(3\)"):
        modalities_lib.condition([True, False], DEFAULT_MODALITIES)
    with pytest.raises(ValueError, match="at least one available modality"):
        modalities_lib.condition([False, False, False], DEFAULT_MODALITIES)


@pytest.mark.parametrize(
    "arguments, error, match",
    [
        (("Acoustic", "a", 3, EncoderKind.LSTM), ValueError, r"`name` must be .*name='Acoustic'"),
        (("1audio", "a", 3, EncoderKind.LSTM), ValueError, r"name='1audio'"),
        (("audio-x", "a", 3, EncoderKind.LSTM), ValueError, r"name='audio-x'"),
        (("", "a", 3, EncoderKind.LSTM), ValueError, r"name=''"),
        (("audio", "ab", 3, EncoderKind.LSTM), ValueError, r"`code` must be one lower-case letter"),
        (("audio", "A", 3, EncoderKind.LSTM), ValueError, r"code='A' for modality 'audio'"),
        (("audio", "1", 3, EncoderKind.LSTM), ValueError, r"code='1'"),
        (("audio", "", 3, EncoderKind.LSTM), ValueError, r"code=''"),
        (("audio", "a", 0, EncoderKind.LSTM), ValueError, r"feature_dim=0 for modality 'audio'"),
        (("audio", "a", -2, EncoderKind.LSTM), ValueError, r"feature_dim=-2"),
        (("audio", "a", 3.0, EncoderKind.LSTM), ValueError, r"positive int.*feature_dim=3\.0"),
        (("audio", "a", 3, "lstm"), TypeError, r"must be an EncoderKind.*encoder='lstm'"),
    ],
)
def test_modality_spec_validation(arguments, error, match):
    with pytest.raises(error, match=match):
        ModalitySpec(*arguments)


def test_validate_modalities_errors():
    with pytest.raises(ValueError, match="At least one modality"):
        modalities_lib.validate_modalities(())
    with pytest.raises(TypeError, match="Expected ModalitySpec instances"):
        modalities_lib.validate_modalities((DEFAULT_MODALITIES[0], "visual"))
    with pytest.raises(ValueError, match=r"names must be unique.*\['audio'\]"):
        missing_conditions((_spec("audio", "a"), _spec("audio", "b")))
    with pytest.raises(ValueError, match=r"codes must be unique.*\['a'\]"):
        missing_conditions((_spec("audio", "a"), _spec("arms", "a")))


def test_spec_json_round_trip():
    for spec in DEFAULT_MODALITIES:
        assert ModalitySpec.from_json(spec.to_json()) == spec
    assert DEFAULT_MODALITIES[2].to_json() == {
        "name": "text", "code": "t", "feature_dim": 1024, "encoder": "text_cnn",
    }
