"""Server-side batching of concurrent `serving_default` requests (TF Serving's `--enable_batching`).

Requests waiting in the queue are merged into one signature call of at most `max_batch_size`
examples: each modality's features are zero-padded to the longest request's time and
concatenated, the lengths concatenated, and the outputs split back by rows. A request never
waits more than `batch_timeout_ms` for others to join it once the batch thread is free. Only
requests pinned to the same version are merged. Each request's lengths are checked against its
own time dimension before merging (the model's check would see the padded one), so a bad request
is refused alone; should a merged call still fail, its requests are run one by one, so that only
the bad one gets the error.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import queue
import threading
import time
from typing import Mapping

import numpy as np
import tensorflow as tf
from absl import logging

from mmin_tf.export.saved_model import SERVING_SIGNATURE


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """Attributes:
        max_batch_size: examples per merged call (a larger request runs alone).
        batch_timeout_ms: the longest a free batch thread waits for more requests to join.
    """

    max_batch_size: int = 8
    batch_timeout_ms: float = 2.0

    def __post_init__(self):
        if self.max_batch_size < 1 or self.batch_timeout_ms < 0:
            raise ValueError(f"Batching needs max_batch_size >= 1 and batch_timeout_ms >= 0. Received: {self}")


@dataclasses.dataclass(frozen=True)
class _Item:
    version: object  # a versions.ServedVersion
    inputs: Mapping[str, np.ndarray]
    rows: int
    future: concurrent.futures.Future


def rows(inputs: Mapping[str, np.ndarray]) -> int:
    """The examples in one request's `serving_default` inputs."""
    return len(next(iter(inputs.values())))


def merge(requests: list[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenates `serving_default` inputs along the batch, padding every rank-3 input's time
    axis with zeros to the longest."""
    merged = {}
    for name in requests[0]:
        parts = [inputs[name] for inputs in requests]
        if parts[0].ndim == 3:
            time_steps = max(part.shape[1] for part in parts)
            parts = [np.pad(part, ((0, 0), (0, time_steps - part.shape[1]), (0, 0))) for part in parts]
        merged[name] = np.concatenate(parts, axis=0)
    return merged


_STOP = object()  # queued by `Batcher.stop`


class Batcher:
    """One thread running merged `serving_default` calls; `submit` from any thread."""

    def __init__(self, options: BatchingOptions = BatchingOptions()):
        self.options = options
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="serving-batcher", daemon=True)
        self._thread.start()

    def submit(self, version, inputs: Mapping[str, np.ndarray]) -> concurrent.futures.Future:
        """Queues one checked request; the future gives its outputs `{name: numpy}`, or raises
        `tf.errors.InvalidArgumentError` for a request the model refuses."""
        future = concurrent.futures.Future()
        self._queue.put(_Item(version, inputs, rows(inputs), future))
        return future

    def stop(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        timeout = self.options.batch_timeout_ms / 1000
        waiting = None  # an item taken from the queue that did not fit into the last batch
        while True:
            first = waiting if waiting is not None else self._queue.get()
            waiting = None
            if first is _STOP:
                return
            batch, count = [first], first.rows
            deadline = time.monotonic() + timeout
            while count < self.options.max_batch_size:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP or count + item.rows > self.options.max_batch_size or item.version is not first.version:
                    waiting = item  # first of the next batch
                    break
                batch.append(item)
                count += item.rows
            self._answer(batch)

    def _answer(self, batch: list[_Item]) -> None:
        signature = batch[0].version.signatures[SERVING_SIGNATURE]
        try:
            merged = merge([item.inputs for item in batch])
            outputs = {key: value.numpy() for key, value in signature(
                **{key: tf.constant(value) for key, value in merged.items()}).items()}
        except tf.errors.InvalidArgumentError as error:
            if len(batch) == 1:
                batch[0].future.set_exception(error)
            else:  # one of them is bad: find out which, one by one
                for item in batch:
                    self._answer([item])
            return
        except Exception as error:  # a server fault: every request of the batch gets it (HTTP 500)
            logging.exception("A batch of %d requests failed", len(batch))
            for item in batch:
                item.future.set_exception(error)
            return
        start = 0
        for item in batch:
            item.future.set_result({key: value[start:start + item.rows] for key, value in outputs.items()})
            start += item.rows
