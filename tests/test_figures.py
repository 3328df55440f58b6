"""Report figures: PNGs, summed confusion matrices, the imagination embeddings, the projector export."""

import json
import os
import shutil

import numpy as np
import pytest

from mmin_tf import figures

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LABELS = ["anger", "happy", "neutral", "sad"]
COLUMNS = ["a", "v", "t", "av", "at", "vt", "average", "avt"]


def assert_png(path, min_width=200, min_height=150):
    import matplotlib.image

    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[0] >= min_height and image.shape[1] >= min_width
    assert image[..., :3].std() > 0.01  # something is drawn
    directory = os.path.dirname(path)
    assert not [name for name in os.listdir(directory) if "incomplete" in name]


def fake_columns(offset):
    return {
        column: {"mean": 0.5 + offset + 0.02 * i, "std": 0.01 * (i % 3)}
        for i, column in enumerate(COLUMNS)
    }


def write_confusion(run_dir, conditions, label_names=LABELS):
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, figures.CONFUSION_MATRICES), "w") as f:
        json.dump({"label_names": label_names,
                   "conditions": {k: np.asarray(v).tolist() for k, v in conditions.items()}}, f)
    return str(run_dir)


def test_condition_labels_follow_the_paper():
    assert [figures.condition_label(c) for c in COLUMNS] == [
        "{a}", "{v}", "{t}", "{a,v}", "{a,t}", "{v,t}", "Average", "{a,v,t}"
    ]


def test_bar_chart_is_a_png(tmp_path):
    path = figures.condition_bar_chart(
        {"baseline": fake_columns(0.0), "mmin": fake_columns(0.05),
         # One run: results.aggregate writes std None.
         "mmin_ae": {c: {**cell, "std": None} for c, cell in fake_columns(0.03).items()}},
        "ua", str(tmp_path / "sub" / "bars.png"), title="IEMOCAP UA",
    )
    assert path == str(tmp_path / "sub" / "bars.png")
    assert_png(path, min_width=500, min_height=300)


def test_bar_chart_rejects_a_model_without_a_column(tmp_path):
    partial = fake_columns(0.0)
    del partial["avt"]
    with pytest.raises(ValueError, match=r"'mmin' lacks columns \['avt'\]"):
        figures.condition_bar_chart(
            {"baseline": fake_columns(0.0), "mmin": partial}, "ua", str(tmp_path / "b.png")
        )
    with pytest.raises(ValueError, match="at least one model"):
        figures.condition_bar_chart({}, "ua", str(tmp_path / "b.png"))


def test_confusion_figure_is_a_png(tmp_path):
    rng = np.random.default_rng(0)
    matrices = {name: rng.integers(0, 20, size=(4, 4)) for name in ["a", "v", "t", "av", "at", "vt", "avt"]}
    matrices["a"][2] = 0  # a class never seen in the test split: no division by zero
    assert_png(figures.confusion_matrix_figure(matrices, LABELS, str(tmp_path / "c.png")), 600, 300)
    assert_png(figures.confusion_matrix_figure(matrices, LABELS, str(tmp_path / "raw.png"), normalize=False))
    with pytest.raises(ValueError, match=r"must have shape \(4, 4\)"):
        figures.confusion_matrix_figure({"a": np.zeros((3, 3))}, LABELS, str(tmp_path / "x.png"))


def test_sum_confusion_matrices_over_runs(tmp_path):
    first = {"a": np.arange(16).reshape(4, 4), "avt": np.eye(4, dtype=int)}
    second = {"a": np.ones((4, 4), int), "avt": 2 * np.eye(4, dtype=int)}
    runs = [write_confusion(tmp_path / "r1", first), write_confusion(tmp_path / "r2", second)]
    label_names, total = figures.sum_confusion_matrices(runs)
    assert label_names == LABELS
    assert list(total) == ["a", "avt"]
    np.testing.assert_array_equal(total["a"], np.arange(16).reshape(4, 4) + 1)
    np.testing.assert_array_equal(total["avt"], 3 * np.eye(4))


def test_sum_confusion_matrices_errors(tmp_path):
    good = write_confusion(tmp_path / "good", {"a": np.eye(4, dtype=int)})
    other_labels = write_confusion(tmp_path / "labels", {"a": np.eye(2, dtype=int)}, ["x", "y"])
    other_conditions = write_confusion(tmp_path / "conditions", {"v": np.eye(4, dtype=int)})
    missing = str(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=f"{os.path.join(missing, figures.CONFUSION_MATRICES)} not found"):
        figures.sum_confusion_matrices([good, missing])
    with pytest.raises(ValueError, match="has labels"):
        figures.sum_confusion_matrices([good, other_labels])
    with pytest.raises(ValueError, match="has conditions"):
        figures.sum_confusion_matrices([good, other_conditions])
    with pytest.raises(ValueError, match="at least one run"):
        figures.sum_confusion_matrices([])


@pytest.fixture(scope="module")
def embeddings(run_dir):
    return figures.imagination_embeddings(run_dir)


@pytest.fixture(scope="module")
def loaded(run_dir):
    """(MMIN, teacher, config, DatasetInfo, test examples by utterance id), loaded by the test."""
    import keras

    from mmin_tf.data import format as format_lib
    from mmin_tf.data import pipeline

    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    info = format_lib.load_info(config["data"]["data_dir"])
    examples = {
        example["utterance_id"].decode(): example
        for example in pipeline.read_fold_split(
            config["data"]["data_dir"], info, config["data"]["fold"], "test"
        ).as_numpy_iterator()
    }
    model = keras.saving.load_model(os.path.join(run_dir, "best.keras"))
    teacher = keras.saving.load_model(os.path.join(run_dir, "teacher", "best.keras"))
    return model, teacher, config, info, examples


def test_imagination_embeddings_shapes(embeddings, loaded):
    model, teacher, _, info, examples = loaded
    names = [spec.name for spec in info.modalities]
    first_speaker = next(iter(examples.values()))["speaker"].decode()
    n = sum(example["speaker"].decode() == first_speaker for example in examples.values())
    assert embeddings["speaker"] == first_speaker
    assert embeddings["modalities"] == names
    assert len(embeddings["utterance_ids"]) == n > 0
    assert {examples[i]["speaker"].decode() for i in embeddings["utterance_ids"]} == {first_speaker}
    np.testing.assert_array_equal(
        embeddings["labels"], [examples[i]["label"] for i in embeddings["utterance_ids"]]
    )
    assert embeddings["label_names"] == list(info.label_names)
    start = 0
    for name in names:
        width = teacher.embedder.encoders[name].output_size
        assert embeddings["slot"][name] == (start, start + width)
        start += width
        for kind in ("ground_truth", "imagined"):
            array = embeddings[kind][name]
            assert array.shape == (n, width) and array.dtype == np.float32
            assert np.all(np.isfinite(array))
    assert start == model.embedder.output_size


def test_imagination_embeddings_match_the_models(embeddings, loaded):
    from mmin_tf.data import pipeline

    model, teacher, _, info, examples = loaded
    row = len(embeddings["utterance_ids"]) - 1
    example = examples[embeddings["utterance_ids"][row]]
    inputs = {}
    for spec in info.modalities:
        length = example[spec.length_key]
        inputs[spec.name] = example[spec.name][None, :length]  # unpadded, batch of one
        inputs[spec.length_key] = np.array([length], np.int32)
    full = teacher.embedder(inputs, training=False).numpy()
    for index, spec in enumerate(info.modalities):
        start, stop = embeddings["slot"][spec.name]
        np.testing.assert_allclose(embeddings["ground_truth"][spec.name][row], full[0, start:stop],
                                   rtol=1e-5, atol=1e-5)
        all_but = [i != index for i in range(len(info.modalities))]
        masked = pipeline.apply_availability(inputs, np.array([all_but]), info.modalities)
        imagined = model(masked, training=False)["imagined"].numpy()
        np.testing.assert_allclose(embeddings["imagined"][spec.name][row], imagined[0, start:stop],
                                   rtol=1e-5, atol=1e-5)
    # Imagining a missing modality is not copying the teacher: the two differ.
    assert not np.allclose(embeddings["imagined"]["acoustic"], embeddings["ground_truth"]["acoustic"])


def test_imagination_embeddings_with_pretrained_teacher_and_limit(run_dir, embeddings, tmp_path):
    """A run trained with --pretrained_dir has no teacher/: the config's pretrained_dir is used."""
    copy = tmp_path / "mmin"
    copy.mkdir()
    shutil.copy(os.path.join(run_dir, "best.keras"), copy / "best.keras")
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    config["pretrained_dir"] = os.path.join(run_dir, "teacher")
    (copy / "config.json").write_text(json.dumps(config))
    limited = figures.imagination_embeddings(str(copy), speaker=embeddings["speaker"], max_utterances=2)
    assert limited["utterance_ids"] == embeddings["utterance_ids"][:2]
    for name in limited["modalities"]:
        np.testing.assert_allclose(limited["ground_truth"][name], embeddings["ground_truth"][name][:2],
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(limited["imagined"][name], embeddings["imagined"][name][:2],
                                   rtol=1e-5, atol=1e-5)
    config["pretrained_dir"] = str(tmp_path / "nowhere")
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(FileNotFoundError, match="nowhere.*best.keras not found"):
        figures.imagination_embeddings(str(copy))


def test_imagination_embeddings_errors(run_dir, embeddings, tmp_path):
    with pytest.raises(ValueError, match="'baseline' run; imagined embeddings need an MMIN run"):
        figures.imagination_embeddings(os.path.join(run_dir, "teacher"))
    with pytest.raises(ValueError, match="Speaker 'nobody' has no utterances in the test split"):
        figures.imagination_embeddings(run_dir, speaker="nobody")
    with pytest.raises(ValueError, match="`max_utterances` must be a positive int"):
        figures.imagination_embeddings(run_dir, max_utterances=0)
    with pytest.raises(ValueError, match="config.json not found"):
        figures.imagination_embeddings(str(tmp_path))


def test_tsne_figure_is_a_png(embeddings, tmp_path):
    assert_png(figures.tsne_figure(embeddings, str(tmp_path / "tsne.png")), 400, 300)


def test_export_projector(embeddings, tmp_path):
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorboard.plugins import projector

    log_dir = str(tmp_path / "projector")
    assert figures.export_projector(embeddings, log_dir) == log_dir
    names = embeddings["modalities"]
    n = len(embeddings["utterance_ids"])
    width = embeddings["ground_truth"][names[0]].shape[1]
    rows = 2 * len(names) * n

    config = projector.ProjectorConfig()
    with open(os.path.join(log_dir, "projector_config.pbtxt")) as f:
        text_format.Parse(f.read(), config)
    assert [e.tensor_name for e in config.embeddings] == ["embedding/.ATTRIBUTES/VARIABLE_VALUE"]
    assert config.embeddings[0].metadata_path == "metadata.tsv"

    with open(os.path.join(log_dir, "metadata.tsv")) as f:
        lines = f.read().splitlines()
    assert len(lines) == rows + 1
    assert lines[0] == "kind\tmodality\tlabel\tutterance_id"
    first_label = embeddings["label_names"][embeddings["labels"][0]]
    assert lines[1] == f"ground_truth\t{names[0]}\t{first_label}\t{embeddings['utterance_ids'][0]}"
    assert lines[len(names) * n + 1].startswith(f"imagined\t{names[0]}\t")

    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(log_dir))
    stacked = reader.get_tensor("embedding/.ATTRIBUTES/VARIABLE_VALUE")
    assert stacked.shape == (rows, width)
    np.testing.assert_array_equal(stacked[:n], embeddings["ground_truth"][names[0]])
    np.testing.assert_array_equal(stacked[len(names) * n:][:n], embeddings["imagined"][names[0]])
    assert np.loadtxt(os.path.join(log_dir, "embeddings.tsv"), delimiter="\t").shape == (rows, width)


def test_write_experiment_figures(run_dir, tmp_path):
    baseline_runs = [
        write_confusion(tmp_path / "runs" / f"baseline_{fold}", {"a": np.eye(4, dtype=int), "avt": np.eye(4, dtype=int)})
        for fold in (1, 2)
    ]
    results = {
        "dataset": "tiny",
        "metrics": ["wa", "ua"],
        "columns": COLUMNS,
        "models": {
            "baseline": {
                "runs": [{"fold": str(i + 1), "seed": 0, "run_dir": d} for i, d in enumerate(baseline_runs)],
                "columns": {c: {"wa": {**cell, "values": [cell["mean"]]}, "ua": cell}
                            for c, cell in fake_columns(0.0).items()},
            },
            "mmin": {
                "runs": [{"fold": "1", "seed": 0, "run_dir": run_dir}],
                "columns": {c: {"wa": cell, "ua": cell} for c, cell in fake_columns(0.05).items()},
            },
        },
    }
    output_dir = tmp_path / "experiment"
    written = figures.write_experiment_figures(results, str(output_dir))
    figures_dir = output_dir / "figures"
    expected = [figures_dir / name for name in (
        "bars_wa.png", "bars_ua.png", "confusion_baseline.png", "confusion_mmin.png", "tsne_mmin.png"
    )] + [figures_dir / "projector"]
    assert written == [str(path) for path in expected]
    for path in expected[:-1]:
        assert_png(str(path))
    assert (figures_dir / "projector" / "projector_config.pbtxt").exists()

    results["models"]["baseline"]["runs"].append({"fold": "3", "seed": 0, "run_dir": str(tmp_path / "gone")})
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "gone")):
        figures.write_experiment_figures(results, str(output_dir))


def test_figure_input_errors(tmp_path):
    path = str(tmp_path / "x.png")
    with pytest.raises(ValueError, match="has no columns"):
        figures.condition_bar_chart({"mmin": {}}, "ua", path)
    with pytest.raises(ValueError, match="needs a 'mean'"):
        figures.condition_bar_chart({"mmin": {"a": {"std": 0.1}}}, "ua", path)
    with pytest.raises(ValueError, match="at least one condition"):
        figures.confusion_matrix_figure({}, LABELS, path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / figures.CONFUSION_MATRICES).write_text(json.dumps({"conditions": {}}))
    with pytest.raises(ValueError, match="must hold 'label_names' and 'conditions'"):
        figures.load_confusion_matrices(str(tmp_path / "bad"))
    good = write_confusion(tmp_path / "good", {"a": np.eye(4, dtype=int)})
    wrong_shape = write_confusion(tmp_path / "shape", {"a": np.eye(3, dtype=int)})
    with pytest.raises(ValueError, match=r"has shape \(3, 3\), expected \(4, 4\)"):
        figures.sum_confusion_matrices([good, wrong_shape])


def hand_made_embeddings(n=3, widths=(2, 2), imagined_rows=None):
    names = ["acoustic", "visual"][: len(widths)]
    return {
        "modalities": names,
        "ground_truth": {name: np.ones((n, w)) for name, w in zip(names, widths)},
        "imagined": {name: np.ones((imagined_rows or n, widths[0])) for name in names},
        "labels": np.zeros(n, int),
        "label_names": LABELS,
        "utterance_ids": [f"u{i}" for i in range(n)],
        "speaker": "s",
    }


def test_embedding_input_errors(tmp_path):
    with pytest.raises(ValueError, match="must have one width"):
        figures.export_projector(hand_made_embeddings(widths=(2, 3)), str(tmp_path / "p"))
    with pytest.raises(ValueError, match="imagined embeddings of 'acoustic' have 2 rows for 3 utterances"):
        figures.export_projector(hand_made_embeddings(imagined_rows=2), str(tmp_path / "p"))
    with pytest.raises(ValueError, match="t-SNE needs at least 3 points"):
        figures.tsne_figure(hand_made_embeddings(n=1, widths=(2,)), str(tmp_path / "t.png"))


def copy_run(run_dir, destination, with_model=True, **config_changes):
    destination.mkdir()
    if with_model:
        shutil.copy(os.path.join(run_dir, "best.keras"), destination / "best.keras")
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    config.update(config_changes)
    (destination / "config.json").write_text(json.dumps(config))
    return str(destination)


def test_imagination_embeddings_run_errors(run_dir, tiny_dataset, tmp_path, monkeypatch):
    no_teacher = copy_run(run_dir, tmp_path / "no_teacher", pretrained_dir=None)
    with pytest.raises(FileNotFoundError, match="has no teacher"):
        figures.imagination_embeddings(no_teacher)
    no_model = copy_run(run_dir, tmp_path / "no_model", with_model=False,
                        pretrained_dir=os.path.join(run_dir, "teacher"))
    with pytest.raises(FileNotFoundError, match="no_model.*best.keras not found"):
        figures.imagination_embeddings(no_model)
    other_data_dir, _ = tiny_dataset  # other feature dims than the run's dataset
    with pytest.raises(ValueError, match="the MMIN of run .* was trained on"):
        figures.imagination_embeddings(run_dir, data_dir=other_data_dir)

    import tensorflow as tf

    from mmin_tf.data import pipeline

    original = pipeline.make_evaluation_dataset

    def reordered(examples, modalities, condition, batching):
        dataset = original(examples, modalities, condition, batching)
        if condition.is_full:
            return dataset
        return dataset.map(lambda inputs, label, ids: (inputs, label, tf.reverse(ids, [0])))

    monkeypatch.setattr(pipeline, "make_evaluation_dataset", reordered)
    with pytest.raises(RuntimeError, match="came in another order"):
        figures.imagination_embeddings(run_dir)


def test_write_experiment_figures_input_errors(tmp_path):
    run = write_confusion(tmp_path / "run", {"a": np.eye(4, dtype=int)})
    results = {
        "dataset": "tiny", "metrics": ["ua"], "columns": ["a"],
        "models": {"baseline": {"runs": [{"fold": "1", "seed": 0, "run_dir": run}],
                                "columns": {"a": {"ua": {"mean": 0.5, "std": 0.0}}}}},
    }
    out = str(tmp_path / "out")
    assert figures.write_experiment_figures(results, out) == [
        os.path.join(out, "figures", "bars_ua.png"), os.path.join(out, "figures", "confusion_baseline.png")
    ]
    with pytest.raises(ValueError, match="`results` lacks 'columns'"):
        figures.write_experiment_figures({k: v for k, v in results.items() if k != "columns"}, out)
    with pytest.raises(ValueError, match="is empty"):
        figures.write_experiment_figures({**results, "models": {}}, out)
    with pytest.raises(ValueError, match="no 'wa' for column 'a' of model 'baseline'"):
        figures.write_experiment_figures({**results, "metrics": ["wa"]}, out)
    no_runs = {"baseline": {**results["models"]["baseline"], "runs": []}}
    with pytest.raises(ValueError, match="'baseline' has no runs"):
        figures.write_experiment_figures({**results, "models": no_runs}, out)


def test_experiment_figures_with_an_mctn_row(tmp_path):
    """MCTN: no bar for the full condition, confusion matrices summed per condition over its runs."""
    runs = [{"fold": str(fold), "seed": 0, "run_dirs": {
        c: write_confusion(tmp_path / f"mctn_{c}_{fold}", {c: np.eye(4, dtype=int) * fold}) for c in COLUMNS[:6]}}
        for fold in (1, 2)]
    results = {
        "dataset": "tiny", "metrics": ["ua"], "columns": COLUMNS,
        "models": {
            "baseline": {"runs": [{"fold": "1", "seed": 0, "run_dir": write_confusion(
                tmp_path / "baseline", {c: np.eye(4, dtype=int) for c in COLUMNS if c != "average"})}],
                "columns": {c: {"ua": cell} for c, cell in fake_columns(0.0).items()}},
            "mctn": {"runs": runs, "columns": {c: {"ua": cell} for c, cell in fake_columns(0.02).items() if c != "avt"}},
        },
    }
    written = figures.write_experiment_figures(results, str(tmp_path / "out"))
    assert [os.path.basename(path) for path in written] == ["bars_ua.png", "confusion_baseline.png", "confusion_mctn.png"]
    for path in written:
        assert_png(path)
    label_names, matrices = figures._sum_per_condition_runs(runs)
    assert label_names == LABELS and list(matrices) == COLUMNS[:6]
    np.testing.assert_array_equal(matrices["at"], np.eye(4) * 3)
    for fold in (1, 2):
        write_confusion(tmp_path / f"mctn_v_{fold}", {"a": np.eye(4, dtype=int)})
    with pytest.raises(ValueError, match="The runs of condition 'v' hold no confusion matrix of it"):
        figures._sum_per_condition_runs(runs)
    write_confusion(tmp_path / "mctn_v_1", {"v": np.eye(4, dtype=int)}, label_names=["w", "x", "y", "z"])
    write_confusion(tmp_path / "mctn_v_2", {"v": np.eye(4, dtype=int)}, label_names=["w", "x", "y", "z"])
    with pytest.raises(ValueError, match="The runs of condition 'v' have labels"):
        figures._sum_per_condition_runs(runs)
