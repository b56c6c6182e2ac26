#!/usr/bin/env bash
# Create .venv and install kwscc (editable) with its test dependencies; quick when already done.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.kwscc-installed"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    # pip's own notes about the machine's index configuration are noise here: shown only if the upgrade fails
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    if ! "$venv/bin/python" -m pip install --quiet --upgrade pip >"$log" 2>&1; then
        cat "$log" >&2
        exit 1
    fi
    # setuptools announces every editable install of a package-dir layout with an informational
    # "Editable installation." warning, and pip notes each configured index folder that lacks a
    # package ("Location ... is ignored"): both dropped, every other warning and error shown
    status=0
    PYTHONWARNINGS="ignore:Editable installation" "$venv/bin/python" -m pip install --quiet -e "$root[test]" \
        2>"$log" || status=$?
    grep -v "^WARNING: Location '.*' is ignored: it is neither a file nor a directory\.$" "$log" >&2 || true
    [ "$status" -eq 0 ] || exit "$status"
    touch "$stamp"
fi
