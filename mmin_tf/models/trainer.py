"""Training wrappers: own the losses, the frozen teacher and the trackers; never exported.

The served models (`UtteranceFusion`, `MMIN`) stay free of training-only parts; a trainer wraps
one, and `fit` runs the trainer's `train_step`. Training datasets carry the unmasked features and
an `availability` mask (see `mmin_tf.data.pipeline`): the trainer hides the missing modalities
from the trained model and, for MMIN, shows the complementary view to the teacher.
"""

import keras
import tensorflow as tf

from mmin_tf import losses
from mmin_tf.configs import LossConfig
from mmin_tf.data.pipeline import AVAILABILITY, CONDITION_MASK, TEACHER_EMBEDDING, apply_availability, presence

_RANDOM_STATE = "random_state_"  # key prefix of the random generator states in saved weights


class _Trainer(keras.Model):
    """Per-network gradient clipping and the shared plumbing of the trainers.

    Args:
        model: the served model being trained.
        clip_norm: every network's gradient is clipped to this global norm separately, as the
            original clips each of its nets (`clip_grad_norm_` per net).
    """

    def __init__(self, model, clip_norm, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.clip_norm = float(clip_norm)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.trackers = {}  # loss term name -> Mean, beside the total
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def random_states(self):
        """The state variables of every random generator in the trainer (its dropout layers'
        `SeedGenerator`s): Keras keeps them in `variables` but not in `weights`, so saved weights
        alone would restart every dropout mask sequence from its beginning."""
        weights = {id(variable) for variable in self.weights}
        return [variable for variable in self.variables if id(variable) not in weights]

    def save_own_variables(self, store):
        """Saves the random states beside the trainer's own variables, so that `save_weights` (and
        with it `BackupAndRestore`) captures everything a resumed run needs to continue exactly."""
        super().save_own_variables(store)
        for index, state in enumerate(self.random_states()):
            store[f"{_RANDOM_STATE}{index}"] = state

    def load_own_variables(self, store):
        """Restores what `save_own_variables` saved. Weights saved without random states (before
        they were saved) leave the current states as they are."""
        keys = list(store.keys())
        super().load_own_variables({key: store[key] for key in keys if not key.startswith(_RANDOM_STATE)})
        saved = [key for key in keys if key.startswith(_RANDOM_STATE)]
        if not saved:
            return
        states = self.random_states()
        if len(saved) != len(states):
            raise ValueError(
                f"The saved weights hold {len(saved)} random generator states; this {type(self).__name__} "
                f"has {len(states)}: they were saved from another model"
            )
        for index, state in enumerate(states):
            state.assign(store[f"{_RANDOM_STATE}{index}"])

    @property
    def metrics(self):
        return [self.loss_tracker, *self.trackers.values(), self.accuracy]

    def _logs(self, terms, labels, logits, replica_share):
        """Updates the trackers with a step's loss `terms` (`loss` and each tracked term) and returns the logs.

        On one device a term tracker averages the steps' values. Under a `tf.distribute` strategy
        each replica holds the mean over its rows; the trackers (summed over the replicas when
        read) then receive each replica's share of the global batch's mean, so that they average
        the same per-step values a one-device run of the global batch would. `replica_share`: the
        `(share, replicas)` that `_apply_clipped_gradients` returned for the step."""
        share, replicas = replica_share
        for name, tracker in (("loss", self.loss_tracker), *self.trackers.items()):
            if replicas == 1:
                tracker.update_state(terms[name])
            else:
                value = tf.math.multiply_no_nan(tf.cast(terms[name], tf.float32), share * replicas)
                tracker.update_state(value, sample_weight=1.0 / replicas)
        self.accuracy.update_state(labels, logits)
        return {metric.name: metric.result() for metric in self.metrics}

    @staticmethod
    def _replica_share(rows):
        """`(share, replicas)`: this replica's `rows` over the global batch's rows, and the number of
        replicas in sync; `(1.0, 1)` on one device (where nothing is exchanged)."""
        context = tf.distribute.get_replica_context()
        replicas = 1 if context is None else context.num_replicas_in_sync
        if replicas == 1:
            return 1.0, 1
        rows = tf.cast(rows, tf.float32)
        return rows / context.all_reduce(tf.distribute.ReduceOp.SUM, rows), replicas

    def networks(self):
        """The layers whose gradients are clipped together; override to add networks."""
        embedder = self.model.embedder
        return [embedder.encoders[spec.name] for spec in embedder.modalities] + [self.model.classifier]

    def _split_inputs(self, data):
        inputs, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        availability = inputs[AVAILABILITY]
        visible = apply_availability(inputs, availability, self.model.modalities, zero_features=False)
        visible.pop(AVAILABILITY)
        return inputs, visible, availability, labels

    def _apply_clipped_gradients(self, tape, loss, rows):
        """Clips each network's gradient of `loss` (the mean over the batch's `rows` rows)
        separately and applies them; returns `(share, replicas)` (see `_replica_share`) for `_logs`.

        Under a `tf.distribute` strategy each replica's `loss` is the mean over its own rows: the
        replicas' gradients, each weighted by its share of the global batch's rows, are summed
        (the gradient of the global batch's mean, as on one device), then clipped, so the
        clipping norm means what it means on one device; the optimizer, which sums the
        replicas' gradients again, is given each replica's equal part of the clipped gradient.
        """
        # Gradients in `trainable_variables` order: the order Keras builds (and restores) the
        # optimizer's slots in.
        variables = self.trainable_variables
        gradients = tape.gradient(loss, variables)
        share, replicas = self._replica_share(rows)
        if replicas > 1:
            present = [index for index, gradient in enumerate(gradients) if gradient is not None]
            summed = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, [tf.math.multiply_no_nan(gradients[i], share) for i in present])
            for index, gradient in zip(present, summed):
                gradients[index] = gradient
        position = {id(variable): index for index, variable in enumerate(variables)}
        clipped = list(gradients)
        for network in self.networks():
            indices = sorted({position[id(v)] for v in network.trainable_variables if id(v) in position})
            if indices:
                group, _ = tf.clip_by_global_norm([gradients[i] for i in indices], self.clip_norm)
                for index, gradient in zip(indices, group):
                    clipped[index] = gradient
        if replicas > 1:
            clipped = [None if gradient is None else gradient / replicas for gradient in clipped]
        self.optimizer.apply(clipped, variables)
        return share, replicas


class ClassifierTrainer(_Trainer):
    """Trains an `UtteranceFusion` with cross-entropy (baseline, augmented, matched).

    Call arguments of `train_step`: `(inputs with availability, labels)` batches.
    Metrics: `loss`, `accuracy`.
    """

    def __init__(self, model, clip_norm=0.5, **kwargs):
        super().__init__(model, clip_norm, **kwargs)

    def train_step(self, data):
        _, visible, _, labels = self._split_inputs(data)
        with tf.GradientTape() as tape:
            logits = self.model(visible, training=True)["logits"]
            loss = losses.classification_loss(labels, logits)
        share = self._apply_clipped_gradients(tape, loss, tf.shape(labels)[0])
        return self._logs({"loss": loss}, labels, logits, share)


class MMINTrainer(_Trainer):
    """Trains `MMIN` with the joint objective of Eq. 7.

    Per step: the student sees the available modalities (`h`, Eq. 1); the frozen teacher encodes
    the complementary view -- the missing modalities' real inputs, zeros for the available ones --
    giving the forward target `h_hat`; the forward imagination yields `h'` and R; the backward
    network maps `h'` to `h''`, whose target is the detached `h` (cycle consistency, Eq. 4).

    Args:
        model: `MMIN`, its encoders initialised from the teacher's.
        teacher: the pretrained baseline's `ModalityEmbedder`; frozen here.
        backward: backward imagination network (returns `reconstruction`), `model.imagination`
            itself to share weights, or None for MMIN-NoCycle.
        loss_config: loss weights and reduction.
        clip_norm: per-network gradient clipping norm.
        finetune_encoders: train the student encoders (the original code) or keep them fixed.
        absent_modalities: the training data may lack modalities (absent in the dataset, or
            dropped by `--train_missing_rate`): the forward imagination loss then covers only the
            slots of the modalities each utterance has (`losses.imagination_loss`'s mask).

    Metrics: `loss`, `ce_loss`, `forward_loss`, `backward_loss` (weighted), `accuracy`.
    """

    def __init__(self, model, teacher, backward, loss_config: LossConfig, clip_norm=1.0, finetune_encoders=True,
                 absent_modalities=False, **kwargs):
        super().__init__(model, clip_norm, **kwargs)
        self.absent_modalities = absent_modalities
        self.teacher = teacher
        self.teacher.trainable = False
        self.backward = backward
        self.loss_config = loss_config
        self.finetune_encoders = finetune_encoders
        self.model.embedder.trainable = finetune_encoders
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("ce_loss", "forward_loss", "backward_loss")
        }
        modalities = self.model.modalities
        self.slot_sizes = [teacher.encoders[spec.name].output_size for spec in modalities]
        nothing = {}
        for spec in modalities:
            nothing[spec.name] = tf.zeros([1, 1, spec.feature_dim])
            nothing[spec.length_key] = tf.zeros([1], tf.int32)
        # The frozen teacher's embedding of every modality missing: a constant (1, dim), float32
        # like the cached embeddings it is combined with, whatever the teacher computes in.
        self.teacher_missing = tf.cast(teacher(nothing, training=False), tf.float32)

    def networks(self):
        networks = super().networks() + [self.model.imagination]
        if self.backward is not None and self.backward is not self.model.imagination:
            networks.append(self.backward)  # a shared backward network is clipped once, with the forward
        return networks

    def teacher_targets(self, inputs, availability):
        """`h_hat`: the teacher's embedding of the complementary view `(batch, dim)`.

        The teacher is frozen, so its embedding of an utterance's real inputs never changes:
        when the batch carries them precomputed (`teacher_embedding`, `(batch, dim)`), the target
        is assembled per modality slot -- the teacher's missing-modality embedding where the
        modality is available to the student, the precomputed embedding where it is missing --
        and no teacher encoder runs in the step. Otherwise the teacher encodes the complement.
        """
        if TEACHER_EMBEDDING in inputs:
            return self._slot_targets(inputs[TEACHER_EMBEDDING], availability)
        complement = apply_availability(
            inputs, tf.logical_not(availability), self.model.modalities, zero_features=False
        )
        return self.teacher(complement, training=False)

    def _slot_targets(self, real, availability):
        """`(rows, dim)`: per modality slot, the teacher's missing-modality embedding where the
        modality is available to the student, `real` (the teacher's embedding of the real inputs)
        where it is missing."""
        available = tf.repeat(availability, self.slot_sizes, axis=1)  # (B, dim)
        return tf.where(available, self.teacher_missing, real)

    def target_mask(self, inputs):
        """`(batch, dim)` bool: the slots of the modalities each row has; None when the data are complete."""
        if not self.absent_modalities:
            return None
        return tf.repeat(presence(inputs, self.model.modalities), self.slot_sizes, axis=1)

    def compute_losses(self, inputs, visible, availability, labels, training):
        """Forward pass and Eq. 7 terms; also used by tests to compare with a reference step."""
        target = self.teacher_targets(inputs, availability)
        outputs = self.model(visible, training=training)
        cycle = None
        if self.backward is not None:
            cycle = self.backward(outputs["imagined"])["reconstruction"]
        terms = losses.mmin_losses(
            labels=labels,
            logits=outputs["logits"],
            teacher_target=target,
            imagined=outputs["imagined"],
            embeddings=outputs["embeddings"],
            cycle_reconstruction=cycle,
            config=self.loss_config,
            target_mask=self.target_mask(inputs),
        )
        return terms, outputs

    def compute_grouped_losses(self, inputs, labels, training):
        """Eq. 7 over every condition row of a batch of utterances, each utterance encoded once.

        `inputs[AVAILABILITY]` is `(batch, conditions, modalities)` and `inputs[CONDITION_MASK]`
        `(batch, conditions)` (`pipeline.make_training_dataset(..., group_conditions=True)`).
        A present modality's pooled encoder features are the same under every condition, so each
        encoder pools each utterance once (`ModalityEmbedder.pool_present_rows`) and every row
        takes them, or the pooled features of zeros where the condition hides the modality; the
        per-row part of the encoders (`project`: TextCNN's dropout and projection) and everything
        after it run on the rows. The rows are the expanded computation's rows: the same losses and
        gradients without dropout (tested), and with dropout each row draws its own masks, as an
        expanded row does; only the pooled features, which involve no randomness, are shared.

        Returns:
            `(terms, outputs, row_labels)`: the loss terms, the rows' `logits`, and their labels.
        """
        embedder = self.model.embedder
        rows = tf.where(inputs[CONDITION_MASK])  # (R, 2): (utterance, condition)
        utterance = rows[:, 0]
        availability = tf.gather_nd(inputs[AVAILABILITY], rows)  # (R, M)
        parts = []
        for index, spec in enumerate(embedder.modalities):
            pooled, missing = embedder.pool_present_rows(spec, inputs[spec.name], inputs[spec.length_key])
            row_pooled = tf.where(availability[:, index:index + 1], tf.gather(pooled, utterance), missing)  # (R, F)
            parts.append(embedder.encoders[spec.name].project(row_pooled, training=training))
        embeddings = tf.concat(parts, axis=-1)  # (R, D)
        # The teacher's embedding of each utterance's real inputs, once; per row, slot by slot, the
        # missing modalities' slots of it and the teacher's missing-modality embedding elsewhere.
        if TEACHER_EMBEDDING in inputs:
            real = inputs[TEACHER_EMBEDDING]
        else:
            real = tf.cast(self.teacher({key: inputs[key] for key in self.model.embedder.input_keys}, training=False),
                           tf.float32)
        target = self._slot_targets(tf.gather(real, utterance), availability)
        mask = self.target_mask(inputs)
        imagination = self.model.imagination(embeddings)
        logits = self.model.classifier(imagination["latents"], training=training)
        cycle = None
        if self.backward is not None:
            cycle = self.backward(imagination["reconstruction"])["reconstruction"]
        row_labels = tf.gather(labels, utterance)
        terms = losses.mmin_losses(
            labels=row_labels, logits=logits, teacher_target=target, imagined=imagination["reconstruction"],
            embeddings=embeddings, cycle_reconstruction=cycle, config=self.loss_config,
            target_mask=None if mask is None else tf.gather(mask, utterance),
        )
        return terms, {"logits": logits}, row_labels

    def train_step(self, data):
        inputs, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if CONDITION_MASK in inputs:
            with tf.GradientTape() as tape:
                terms, outputs, labels = self.compute_grouped_losses(inputs, labels, training=True)
            share = self._apply_clipped_gradients(tape, terms["loss"], tf.shape(labels)[0])
            return self._logs(terms, labels, outputs["logits"], share)
        inputs, visible, availability, labels = self._split_inputs(data)
        with tf.GradientTape() as tape:
            terms, outputs = self.compute_losses(inputs, visible, availability, labels, training=True)
        share = self._apply_clipped_gradients(tape, terms["loss"], tf.shape(labels)[0])
        return self._logs(terms, labels, outputs["logits"], share)
