"""`pytest_test`: a py_test that runs pytest (tools/pytest_runner.py) on its test files."""

def pytest_test(name, srcs, marker = None, no_tests_ok = False, deps = [], data = [], **kwargs):
    """A test target running pytest on `srcs` with the project's pytest.ini.

    Args:
      name: the target's name.
      srcs: the pytest files, in this package (subdirectories allowed).
      marker: a `-m` expression replacing pytest.ini's `not slow` (e.g. "slow").
      no_tests_ok: pass when no test is selected (pytest's exit status 5).
      deps: libraries the tests import.
      data: files the tests read.
      **kwargs: passed to py_test (size, timeout, tags, ...).
    """
    package = native.package_name()
    arguments = (["--no_tests_ok"] if no_tests_ok else []) + (["-m", marker] if marker else [])
    native.py_test(
        name = name,
        srcs = srcs + ["//tools:pytest_runner.py"],
        main = "//tools:pytest_runner.py",
        args = arguments + ["%s/%s" % (package, src) if package else src for src in srcs],
        deps = deps,
        data = data + ["//:pytest.ini"],
        python_version = "PY3",
        **kwargs
    )
