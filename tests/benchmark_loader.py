"""Imports a script from benchmarks/ with its absl flags kept out of the global FLAGS."""

import contextlib
import functools
import importlib.util
import pathlib
import sys
from unittest import mock

from absl import flags


def load_benchmark(name: str):
    """Imports `benchmarks/<name>.py` with its flags in a private FlagValues.

    Benchmarks define `--seed`, `--batch_size`, ... which would otherwise clash with
    `mmin_tf.train`'s, imported into the same test process by other tests.
    """
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    private = flags.FlagValues()
    with contextlib.ExitStack() as stack:
        for attribute in dir(flags):
            if attribute.startswith("DEFINE"):
                define = functools.partial(getattr(flags, attribute), flag_values=private)
                stack.enter_context(mock.patch.object(flags, attribute, define))
        spec.loader.exec_module(module)
    return module
