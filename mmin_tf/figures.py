"""Figures for experiment reports: per-condition bars, confusion matrices, the imagination t-SNE.

`write_experiment_figures` draws everything for one aggregated experiment; the other functions are
its parts and can be used on their own:

    condition_bar_chart       the paper's tables as grouped bars, mean ± std over runs
    confusion_matrix_figure   one confusion matrix per test condition
    imagination_embeddings    the data of the paper's Figure 3 (§4.9 "Imagination ability")
    tsne_figure               Figure 3 itself: t-SNE of ground-truth and imagined embeddings
    export_projector          the same embeddings for TensorBoard's Embedding Projector

Plots are drawn on `matplotlib.figure.Figure` objects, never through `pyplot`: that needs no display
and no GUI backend (PNG output goes through Agg), changes no global matplotlib state and leaves no
figure open. Files are written atomically (a temporary file, then a rename). TensorFlow, Keras,
scikit-learn and matplotlib are imported by the functions that use them, so importing this module
(and drawing bar charts) does not load TensorFlow.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Mapping, Optional, Sequence

import numpy as np

from mmin_tf import atomic_files
from mmin_tf import run_dir as run_dir_lib
from mmin_tf.modalities import condition_label

CONFUSION_MATRICES = "confusion_matrices.json"
FIGURES_DIR = "figures"
PROJECTOR_DIR = "projector"
METADATA = "metadata.tsv"
EMBEDDINGS_TSV = "embeddings.tsv"
PROJECTOR_TENSOR_NAME = "embedding/.ATTRIBUTES/VARIABLE_VALUE"
GROUND_TRUTH = "ground_truth"
IMAGINED = "imagined"


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save_png(figure, path: str) -> str:
    """Writes `figure` to `path` as PNG via a temporary file and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with atomic_files.replacing(path) as temporary:
        figure.savefig(temporary, format="png")
    return path


def condition_bar_chart(
    columns_by_model: Mapping[str, Mapping[str, Mapping[str, float]]],
    metric: str,
    path: str,
    title: str = "",
) -> str:
    """Grouped bars of one metric per test condition, one bar per model, std as error bars.

    Args:
        columns_by_model: model name -> column (`a`, ..., `average`, `avt`) -> {"mean", "std"}.
            The x axis follows the first model's column order; every model needs every column.
            A missing or NaN std (one run) draws no error bar.
        metric: the metric's name, for the y axis (`wa` -> "WA").
        path: the PNG to write.
        title: figure title.

    Returns:
        `path`.
    """
    if not columns_by_model:
        raise ValueError("`columns_by_model` must name at least one model. Received: {}")
    models = list(columns_by_model)
    columns = list(columns_by_model[models[0]])
    if not columns:
        raise ValueError(f"Model {models[0]!r} has no columns to plot")
    means = np.zeros((len(models), len(columns)))
    stds = np.zeros((len(models), len(columns)))
    for i, model in enumerate(models):
        missing = [column for column in columns if column not in columns_by_model[model]]
        if missing:
            raise ValueError(
                f"Model {model!r} lacks columns {missing}; every model needs the columns {columns}"
            )
        for j, column in enumerate(columns):
            cell = columns_by_model[model][column]
            if "mean" not in cell:
                raise ValueError(
                    f"Column {column!r} of model {model!r} needs a 'mean'. Received: {dict(cell)}"
                )
            means[i, j] = float(cell["mean"])
            std = cell.get("std")
            stds[i, j] = 0.0 if std is None or not math.isfinite(float(std)) else float(std)

    figure = _new_figure(min(14.0, max(6.5, 0.28 * len(columns) * (len(models) + 1) + 1.5)), 4.2)
    axes = figure.add_subplot()
    positions = np.arange(len(columns))
    width = 0.8 / len(models)
    colors = _colors(len(models))
    for i, model in enumerate(models):
        axes.bar(
            positions + (i - (len(models) - 1) / 2) * width, means[i], width,
            yerr=stds[i], capsize=2, label=model, color=colors[i], edgecolor="black", linewidth=0.4,
            error_kw={"elinewidth": 0.8},
        )
    axes.set_xticks(positions, [condition_label(column) for column in columns])
    axes.set_xlabel("Testing condition")
    axes.set_ylabel(metric.upper())
    top = float(np.nanmax(means + stds))  # NaN: a column a model is not tested under (no bar)
    bottom = float(np.nanmin(means - stds))
    axes.set_ylim(min(0.0, bottom * 1.1), top * 1.08 if top > 0 else 1.0)
    axes.grid(axis="y", linewidth=0.4, alpha=0.6)
    axes.set_axisbelow(True)
    # Above the axes, so the legend never covers a bar.
    axes.legend(
        loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(models), 5), frameon=False,
        fontsize="small",
    )
    if title:
        figure.suptitle(title)
    return _save_png(figure, path)


def _colors(count: int):
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return [palette(i % 10) for i in range(count)]


def confusion_matrix_figure(
    matrices: Mapping[str, np.ndarray],
    label_names: Sequence[str],
    path: str,
    normalize: bool = True,
) -> str:
    """One confusion matrix per condition (rows true, columns predicted), counts in the cells.

    Args:
        matrices: condition name -> counts `(num_classes, num_classes)`, in plotting order.
        label_names: class names, in label-index order.
        path: the PNG to write.
        normalize: colour each cell by its share of the true class (row-normalized, also written
            under the count); False colours by the counts.

    Returns:
        `path`.
    """
    if not matrices:
        raise ValueError("`matrices` must hold at least one condition. Received: {}")
    num_classes = len(label_names)
    arrays = {}
    for name, matrix in matrices.items():
        array = np.asarray(matrix, dtype=np.float64)
        if array.shape != (num_classes, num_classes):
            raise ValueError(
                f"The matrix of condition {name!r} must have shape ({num_classes}, {num_classes}) "
                f"for labels {list(label_names)}. Received: {array.shape}"
            )
        arrays[name] = array

    columns = min(4, len(arrays))
    rows = math.ceil(len(arrays) / columns)
    cell = max(2.8, 0.55 * num_classes + 1.2)
    figure = _new_figure(cell * columns + 0.8, cell * rows + 0.3)
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes in grid.flat[len(arrays):]:
        axes.set_axis_off()
    for axes, (name, counts) in zip(grid.flat, arrays.items()):
        totals = counts.sum(axis=1, keepdims=True)
        shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        values = shares if normalize else counts
        upper = 1.0 if normalize else max(float(counts.max()), 1.0)
        image = axes.imshow(values, cmap="Blues", vmin=0.0, vmax=upper)
        for i in range(num_classes):
            for j in range(num_classes):
                text = f"{int(round(counts[i, j]))}"
                if normalize:
                    text += f"\n{shares[i, j]:.0%}"
                dark = values[i, j] > 0.55 * upper
                axes.text(
                    j, i, text, ha="center", va="center", fontsize="x-small",
                    color="white" if dark else "black",
                )
        axes.set_title(condition_label(name))
        axes.set_xticks(range(num_classes), list(label_names), rotation=45, ha="right",
                        fontsize="small")
        axes.set_yticks(range(num_classes), list(label_names), fontsize="small")
        axes.set_xlabel("Predicted", fontsize="small")
        axes.set_ylabel("True", fontsize="small")
    figure.colorbar(
        image, ax=list(grid.flat), shrink=0.8,
        label="Share of the true class" if normalize else "Utterances",
    )
    return _save_png(figure, path)


def load_confusion_matrices(run_dir: str) -> dict:
    """Reads `<run_dir>/confusion_matrices.json`: {"label_names": [...], "conditions": {...}}."""
    path = os.path.join(run_dir, CONFUSION_MATRICES)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Run directory {run_dir!r} has no {CONFUSION_MATRICES}: {path} not found")
    with open(path) as f:
        payload = json.load(f)
    if not isinstance(payload, dict) or "label_names" not in payload or "conditions" not in payload:
        raise ValueError(f"{path} must hold 'label_names' and 'conditions'. Received keys: "
                         f"{sorted(payload) if isinstance(payload, dict) else type(payload).__name__}")
    return payload


def sum_confusion_matrices(run_dirs: Sequence[str]) -> tuple[list[str], dict[str, np.ndarray]]:
    """Sums the test confusion matrices of several runs (folds, seeds) per condition.

    Returns:
        `(label_names, {condition: int64 (num_classes, num_classes)})`, conditions in the first
        run's order.
    """
    if not run_dirs:
        raise ValueError("`run_dirs` must name at least one run directory. Received: []")
    label_names, totals = None, None
    for run_dir in run_dirs:
        payload = load_confusion_matrices(run_dir)
        matrices = {name: np.asarray(m, dtype=np.int64) for name, m in payload["conditions"].items()}
        if totals is None:
            label_names, totals = list(payload["label_names"]), matrices
            continue
        if list(payload["label_names"]) != label_names:
            raise ValueError(
                f"{run_dir!r} has labels {payload['label_names']}, the first run {run_dirs[0]!r} "
                f"has {label_names}: cannot sum their confusion matrices"
            )
        if set(matrices) != set(totals):
            raise ValueError(
                f"{run_dir!r} has conditions {sorted(matrices)}, the first run {run_dirs[0]!r} has "
                f"{sorted(totals)}: cannot sum their confusion matrices"
            )
        for name, matrix in matrices.items():
            if matrix.shape != totals[name].shape:
                raise ValueError(
                    f"Condition {name!r} of {run_dir!r} has shape {matrix.shape}, expected "
                    f"{totals[name].shape}"
                )
            totals[name] = totals[name] + matrix
    return label_names, totals


def _sum_per_condition_runs(runs) -> tuple[list[str], dict[str, np.ndarray]]:
    """`sum_confusion_matrices` for a model of one run per condition (MCTN): each condition's
    matrix summed over its own runs, conditions in the first run's order."""
    label_names, totals = None, {}
    for condition in runs[0]["run_dirs"]:
        names, matrices = sum_confusion_matrices([run["run_dirs"][condition] for run in runs])
        if label_names is not None and names != label_names:
            raise ValueError(f"The runs of condition {condition!r} have labels {names}, others {label_names}")
        if condition not in matrices:
            raise ValueError(f"The runs of condition {condition!r} hold no confusion matrix of it: {sorted(matrices)}")
        label_names, totals[condition] = names, matrices[condition]
    return label_names, totals


def _teacher_path(run_dir: str, config: dict) -> str:
    own = os.path.join(run_dir, "teacher", run_dir_lib.BEST_MODEL)
    if os.path.isdir(os.path.join(run_dir, "teacher")):
        path = own
    elif config.get("pretrained_dir"):
        path = os.path.join(config["pretrained_dir"], run_dir_lib.BEST_MODEL)
    else:
        raise FileNotFoundError(
            f"MMIN run {run_dir!r} has no teacher: neither {os.path.join(run_dir, 'teacher')} "
            "exists nor does its config.json name a pretrained_dir"
        )
    if not os.path.exists(path):
        raise FileNotFoundError(f"The teacher model of run {run_dir!r} is missing: {path} not found")
    return path


def _load_model(path: str):
    import keras

    import mmin_tf.models  # noqa: F401  (registers the models for deserialization)

    if not os.path.exists(path):
        raise FileNotFoundError(f"Model file {path} not found")
    return keras.saving.load_model(path)


def imagination_embeddings(
    run_dir: str,
    speaker: Optional[str] = None,
    data_dir: Optional[str] = None,
    max_utterances: int = 200,
) -> dict:
    """Ground-truth and imagined embeddings of one test speaker: the data of the paper's Fig. 3.

    For each modality m and each test utterance of `speaker` (file order, at most
    `max_utterances`):
      - ground truth: the slot of m in the teacher's embedding with every modality present (the
        paper's \\hat{h}; the teacher encodes each modality separately, so this is m's own
        embedding);
      - imagined: the slot of m in MMIN's `imagined` output h' when m is missing and every other
        modality is present (the condition "all but m", e.g. `vt` for acoustic).

    The teacher is `<run_dir>/teacher/best.keras`, or `<pretrained_dir>/best.keras` of the run's
    config when `teacher/` does not exist.

    Args:
        run_dir: a finished MMIN (or MMIN-AE / MMIN-NoCycle) run directory.
        speaker: a speaker of the run's test split; default: the split's first speaker.
        data_dir: the dataset; default: the one named in the run's config.json.
        max_utterances: at most this many utterances of the speaker.

    Returns:
        Dict with `modalities` (names, configured order), `slot` (name -> (start, stop) in the
        embedding), `ground_truth` and `imagined` (name -> float32 `(n, stop - start)`), `labels`
        int `(n,)`, `label_names`, `utterance_ids` (n strings), `speaker` and `codes` (name ->
        modality letter, for plot labels).
    """
    import tensorflow as tf

    from mmin_tf import evaluation
    from mmin_tf import modalities as modalities_lib
    from mmin_tf.configs import ModelKind
    from mmin_tf.data import format as format_lib
    from mmin_tf.data import pipeline

    if isinstance(max_utterances, bool) or not isinstance(max_utterances, int) or max_utterances < 1:
        raise ValueError(f"`max_utterances` must be a positive int. Received: {max_utterances!r}")
    config = run_dir_lib.load_run_config(run_dir)
    kind = config["model"]["kind"]
    if not ModelKind(kind).is_mmin:
        mmin_kinds = [k.value for k in ModelKind if k.is_mmin]
        raise ValueError(
            f"{run_dir!r} is a {kind!r} run; imagined embeddings need an MMIN run "
            f"(model kind one of {mmin_kinds})"
        )
    data_dir = data_dir or config["data"]["data_dir"]
    fold = config["data"]["fold"]
    info = format_lib.load_info(data_dir)
    examples = pipeline.read_fold_split(data_dir, info, fold, "test")
    if speaker is None:
        first = next(iter(examples.take(1)), None)
        if first is None:
            raise ValueError(f"The test split of fold {fold!r} in {data_dir!r} is empty")
        speaker = first[format_lib.SPEAKER].numpy().decode("utf-8")
    of_speaker = examples.filter(
        lambda example: tf.equal(example[format_lib.SPEAKER], speaker)
    ).take(max_utterances)
    if next(iter(of_speaker.take(1)), None) is None:
        speakers = sorted({
            value.decode("utf-8")
            for value in examples.map(lambda example: example[format_lib.SPEAKER]).as_numpy_iterator()
        })
        raise ValueError(
            f"Speaker {speaker!r} has no utterances in the test split of fold {fold!r} in "
            f"{data_dir!r}; its test speakers are {speakers}"
        )

    selected = of_speaker.cache()  # read once per condition below
    teacher_path = _teacher_path(run_dir, config)
    model = _load_model(os.path.join(run_dir, run_dir_lib.BEST_MODEL))
    teacher = _load_model(teacher_path)
    modalities = tuple(info.modalities)
    names = [spec.name for spec in modalities]
    for role, loaded in (("MMIN", model), ("teacher", teacher)):
        if [spec.to_json() for spec in loaded.modalities] != [spec.to_json() for spec in modalities]:
            raise ValueError(
                f"The dataset {data_dir!r} has modalities {[s.to_json() for s in modalities]}, the "
                f"{role} of run {run_dir!r} was trained on {[s.to_json() for s in loaded.modalities]}"
            )
    # MMIN's student encoders are built from the teacher's (`construction.student_embedder`), so
    # both embeddings have the same slots.
    widths = [model.embedder.encoders[name].output_size for name in names]
    edges = np.concatenate([[0], np.cumsum(widths)]).tolist()
    slot = {name: (int(edges[i]), int(edges[i + 1])) for i, name in enumerate(names)}
    batching = pipeline.Batching(batch_size=64)

    def run(model_fn, condition):
        labels, outputs, ids = evaluation.predict_dataset(
            lambda inputs: tf.cast(model_fn(inputs), tf.float32),
            pipeline.make_evaluation_dataset(selected, modalities, condition, batching),
        )
        return outputs, labels, [value.decode("utf-8") for value in ids]

    full = modalities_lib.full_condition(modalities)
    teacher_embeddings, labels, utterance_ids = run(
        lambda inputs: teacher.embedder(inputs, training=False), full
    )
    ground_truth, imagined = {}, {}
    for index, spec in enumerate(modalities):
        start, stop = slot[spec.name]
        ground_truth[spec.name] = teacher_embeddings[:, start:stop]
        all_but = modalities_lib.condition([i != index for i in range(len(modalities))], modalities)
        reconstruction, _, ids = run(lambda inputs: model(inputs, training=False)["imagined"], all_but)
        if ids != utterance_ids:
            raise RuntimeError(
                f"The utterances of condition {all_but.name!r} came in another order than those of "
                f"{full.name!r}; cannot pair imagined with ground-truth embeddings"
            )
        imagined[spec.name] = reconstruction[:, start:stop]
    return {
        "modalities": names,
        "slot": slot,
        "ground_truth": ground_truth,
        "imagined": imagined,
        "labels": labels.astype(np.int64),
        "label_names": list(info.label_names),
        "utterance_ids": utterance_ids,
        "speaker": speaker,
        "codes": {spec.name: spec.code for spec in modalities},
    }


def _stacked(embeddings: Mapping) -> tuple[np.ndarray, list[dict]]:
    """Ground truth of every modality, then imagined of every modality: `(2*M*n, E)` + row info.

    All slots must have the same width (one t-SNE / projector space).
    """
    names = list(embeddings["modalities"])
    codes = embeddings.get("codes") or {name: name[0] for name in names}
    widths = {name: np.asarray(embeddings[GROUND_TRUTH][name]).shape[1] for name in names}
    widths.update({
        f"{name} ({IMAGINED})": np.asarray(embeddings[IMAGINED][name]).shape[1] for name in names
    })
    if len(set(widths.values())) != 1:
        raise ValueError(
            "Ground-truth and imagined embeddings of every modality must have one width to share "
            f"a space. Received widths: {widths}"
        )
    label_names = list(embeddings.get("label_names") or [])
    labels = np.asarray(embeddings["labels"])
    ids = list(embeddings["utterance_ids"])
    blocks, rows = [], []
    for kind in (GROUND_TRUTH, IMAGINED):
        for name in names:
            block = np.asarray(embeddings[kind][name], dtype=np.float32)
            if len(block) != len(ids):
                raise ValueError(
                    f"{kind} embeddings of {name!r} have {len(block)} rows for {len(ids)} utterances"
                )
            blocks.append(block)
            for label, utterance_id in zip(labels, ids):
                rows.append({
                    "kind": kind,
                    "modality": name,
                    "code": codes[name],
                    "label": label_names[int(label)] if label_names else str(int(label)),
                    "utterance_id": utterance_id,
                })
    return np.concatenate(blocks), rows


def tsne_figure(embeddings: Mapping, path: str, seed: int = 0) -> str:
    """The paper's Figure 3: t-SNE of ground-truth and imagined embeddings of every modality.

    Args:
        embeddings: `imagination_embeddings`' result.
        path: the PNG to write.
        seed: t-SNE's random state.

    Returns:
        `path`.
    """
    import threadpoolctl
    from sklearn.manifold import TSNE

    stacked, rows = _stacked(embeddings)
    if len(stacked) < 3:
        raise ValueError(f"t-SNE needs at least 3 points. Received: {len(stacked)}")
    # sklearn requires perplexity < number of points.
    perplexity = float(min(30, len(stacked) - 1))
    # One OpenMP thread: the same result, and with TensorFlow loaded in the process the threaded
    # Barnes-Hut gradient was 8x slower on 2 cores (1200 points: 57 s vs 7 s; 24 points: 20 s).
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        points = TSNE(
            n_components=2, perplexity=perplexity, init="pca", random_state=seed
        ).fit_transform(stacked.astype(np.float64))

    figure = _new_figure(6.2, 5.2)
    axes = figure.add_subplot()
    names = list(embeddings["modalities"])
    colors = dict(zip(names, _colors(len(names))))
    kinds = np.array([row["kind"] for row in rows])
    modality = np.array([row["modality"] for row in rows])
    for kind in (GROUND_TRUTH, IMAGINED):
        for name in names:
            chosen = (kinds == kind) & (modality == name)
            code = next(row["code"] for row in rows if row["modality"] == name)
            if kind == GROUND_TRUTH:
                axes.scatter(points[chosen, 0], points[chosen, 1], s=18, marker="o",
                             color=colors[name], alpha=0.8, label=code)
            else:
                axes.scatter(points[chosen, 0], points[chosen, 1], s=22, marker="x",
                             color=colors[name], alpha=0.9, linewidths=1.0, label=f"{code}_imagined")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    speaker = embeddings.get("speaker")
    axes.set_title(f"Speaker {speaker}" if speaker else "Ground-truth and imagined embeddings")
    return _save_png(figure, path)


def _tsv_field(value) -> str:
    return str(value).replace("\t", " ").replace("\n", " ")


def export_projector(embeddings: Mapping, log_dir: str) -> str:
    """Writes the embeddings for TensorBoard's Embedding Projector (`tensorboard --logdir log_dir`).

    Writes into `log_dir`: a checkpoint holding the stacked embeddings `(2*M*n, E)` (ground truth
    of every modality, then imagined of every modality) as `embedding`, `metadata.tsv` (header
    `kind modality label utterance_id`, one row per point), `embeddings.tsv` (the same vectors for
    the standalone projector, projector.tensorflow.org) and `projector_config.pbtxt`.

    Returns:
        `log_dir`.
    """
    import tensorflow as tf
    from tensorboard.plugins import projector

    stacked, rows = _stacked(embeddings)
    os.makedirs(log_dir, exist_ok=True)
    lines = ["kind\tmodality\tlabel\tutterance_id"] + [
        "\t".join(_tsv_field(row[key]) for key in ("kind", "modality", "label", "utterance_id"))
        for row in rows
    ]
    atomic_files.write_text(os.path.join(log_dir, METADATA), "\n".join(lines) + "\n")
    atomic_files.write_text(
        os.path.join(log_dir, EMBEDDINGS_TSV),
        "\n".join("\t".join(f"{value:.7g}" for value in vector) for vector in stacked) + "\n",
    )
    checkpoint = tf.train.Checkpoint(embedding=tf.Variable(stacked, trainable=False))
    # max_to_keep=1: writing again into the same directory replaces the previous embedding.
    tf.train.CheckpointManager(checkpoint, log_dir, max_to_keep=1, checkpoint_name="embedding").save()
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = PROJECTOR_TENSOR_NAME
    embedding.metadata_path = METADATA  # relative to log_dir, so the directory can be moved
    projector.visualize_embeddings(log_dir, config)
    return log_dir


def _file_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", key)


def write_experiment_figures(results: Mapping, output_dir: str) -> list[str]:
    """Draws an aggregated experiment's figures into `<output_dir>/figures/`.

    Args:
        results: the experiment runner's aggregate: `dataset`, `metrics` (e.g. ["wa", "ua"]),
            `columns` (e.g. a v t av at vt average avt), and `models`: model key -> {"runs":
            [{"fold", "seed", "run_dir"}], "columns": {column: {metric: {"mean", "std", ...}}}}.
            A model whose `columns` lack a column (MCTN's full condition) has no bar there; a model
            of one run per condition (MCTN: runs `{"fold", "seed", "run_dirs": {condition: run_dir}}`)
            sums each condition's matrices over that condition's runs.
        output_dir: the experiment's directory.

    Writes `bars_<metric>.png` per metric (every model), `confusion_<model>.png` per model
    (confusion matrices summed over its runs) and, when a model `mmin` exists, `tsne_mmin.png` and
    `projector/` from its first run.

    Returns:
        The written paths (the projector directory for the projector export).
    """
    for key in ("metrics", "columns", "models"):
        if key not in results:
            raise ValueError(f"`results` lacks {key!r}. Received keys: {sorted(results)}")
    models = results["models"]
    if not models:
        raise ValueError("`results['models']` is empty: no figures to draw")
    figures_dir = os.path.join(output_dir, FIGURES_DIR)
    os.makedirs(figures_dir, exist_ok=True)
    dataset = results.get("dataset", "")
    written = []
    for metric in results["metrics"]:
        columns_by_model = {}
        for model, entry in models.items():
            columns_by_model[model] = {}
            for column in results["columns"]:
                if column not in entry.get("columns", {}):  # not tested under it (MCTN's full condition)
                    columns_by_model[model][column] = {"mean": float("nan"), "std": None}
                    continue
                cell = entry["columns"][column].get(metric)
                if cell is None:
                    raise ValueError(f"`results` has no {metric!r} for column {column!r} of model {model!r}")
                columns_by_model[model][column] = cell
        title = f"{dataset} {metric.upper()}".strip()
        written.append(condition_bar_chart(
            columns_by_model, metric, os.path.join(figures_dir, f"bars_{_file_name(metric)}.png"), title
        ))
    for model, entry in models.items():
        runs = entry.get("runs") or []
        if not runs:
            raise ValueError(f"Model {model!r} has no runs in `results`; cannot sum its confusion matrices")
        if all("run_dirs" in run for run in runs):
            label_names, matrices = _sum_per_condition_runs(runs)
        else:
            label_names, matrices = sum_confusion_matrices([run["run_dir"] for run in runs])
        written.append(confusion_matrix_figure(
            matrices, label_names, os.path.join(figures_dir, f"confusion_{_file_name(model)}.png")
        ))
    if "mmin" in models:
        embeddings = imagination_embeddings(models["mmin"]["runs"][0]["run_dir"])
        written.append(tsne_figure(embeddings, os.path.join(figures_dir, "tsne_mmin.png")))
        written.append(export_projector(embeddings, os.path.join(figures_dir, PROJECTOR_DIR)))
    return written
