#!/bin/sh
# The project's venv, <workspace>/.venv. -P: sys.path does not start with the script's directory
# (mmin_tf/statistics.py cannot shadow the stdlib's), and `bazel run` starts in the directory bazel
# was called from: commands run as `python -m mmin_tf.<command>` would.
python="$(dirname "$(readlink -f "$0")")/../.venv/bin/python3"
[ -z "${BUILD_WORKING_DIRECTORY:-}" ] || cd "$BUILD_WORKING_DIRECTORY"
exec "$python" -P "$@"
