#!/bin/sh
# Runs a Python test with the interpreter configure found (one that imports numpy), or skips it
# (exit 77, automake's "skipped") when there is none.
if [ -z "$UDFHOST_PYTHON" ]; then
    echo "SKIP: no Python with numpy (apt-get install python3-numpy, then re-run configure)"
    exit 77
fi
exec "$UDFHOST_PYTHON" "$@"
