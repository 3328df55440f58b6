"""Runs pytest on the files a Bazel test target names, from the target's runfiles tree.

`tools/pytest.bzl` passes the files (and `-m slow` for the slow target) as arguments; pytest.ini,
in the runfiles beside them, supplies the markers and the default `-m "not slow"`. With
`--no_tests_ok` first, a target that selects no test passes (the slow target, while no test is
marked slow).
"""

import os
import sys

import pytest

if __name__ == "__main__":
    sys.dont_write_bytecode = True  # the runfiles tree is not ours to write into
    # The runfiles root, where the file arguments are (`bazel run` of a test starts elsewhere).
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    arguments = sys.argv[1:]
    no_tests_ok = arguments[:1] == ["--no_tests_ok"]
    arguments = ["-p", "no:cacheprovider", *arguments[no_tests_ok:]]
    if os.environ.get("XML_OUTPUT_FILE"):
        arguments.append(f"--junitxml={os.environ['XML_OUTPUT_FILE']}")
    if os.environ.get("TESTBRIDGE_TEST_ONLY"):  # bazel test --test_filter=EXPRESSION
        arguments += ["-k", os.environ["TESTBRIDGE_TEST_ONLY"]]
    status = pytest.main(arguments)
    sys.exit(0 if no_tests_ok and status == pytest.ExitCode.NO_TESTS_COLLECTED else status)
