#!/bin/sh
echo "remote_coverage_tools is an offline stub (third_party/remote_coverage_tools): bazel coverage cannot run" >&2
exit 1
