"""Imports a script from benchmarks/ with its absl flags kept out of the global FLAGS."""

import contextlib
import importlib.util
import pathlib
import sys
from unittest import mock

from absl import flags


def load_benchmark(name: str):
    """Imports `benchmarks/<name>.py` with its flags in a private FlagValues.

    Benchmarks define `--seed`, `--batch_size`, ... which would otherwise clash with
    `mmin_tf.train`'s, imported into the same test process by other tests. Only the benchmark's
    own definitions go there: a module it imports for the first time (`mmin_tf.train` for
    `reference_accuracy.py`) defines its flags in the global FLAGS, as any other import would.
    """
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    private = flags.FlagValues()

    def redirected(define):
        def define_flag(*args, **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__")
            if caller == spec.name:  # the benchmark's own line
                kwargs.setdefault("flag_values", private)
            # absl names a flag's module from the caller's frame, which is this one: name it.
            kwargs.setdefault("module_name", caller)
            return define(*args, **kwargs)
        return define_flag

    with contextlib.ExitStack() as stack:
        for attribute in dir(flags):
            if attribute.startswith("DEFINE"):
                stack.enter_context(mock.patch.object(flags, attribute, redirected(getattr(flags, attribute))))
        spec.loader.exec_module(module)
    return module
