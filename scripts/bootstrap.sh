# Sourced by scripts/up and scripts/test: find or install uv, then install the locked environment.
# Needs only python3 (3.11+) on the machine; everything else comes from uv.lock.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UV_VERSION="0.13.9"
if command -v uv >/dev/null 2>&1; then
  UV="$(command -v uv)"
else
  UV="$ROOT/.tools/bin/uv"
  if [ ! -x "$UV" ]; then
    echo "· installing uv $UV_VERSION into .tools/" >&2
    python3 -m venv "$ROOT/.tools"
    "$ROOT/.tools/bin/pip" install --quiet "uv==$UV_VERSION"
  fi
fi
export UV_PYTHON_DOWNLOADS=never  # use the machine's python3; never fetch one
# Bytecode is compiled at install: a machine may set PYTHONDONTWRITEBYTECODE (this one does),
# and then every process would compile Prefect from source again (an import of its engine
# 5.4 s instead of 2.7 s). The checkout's own packages likewise (stale ones recompile in memory).
"$UV" sync --frozen --project "$ROOT" --quiet --compile-bytecode
"$ROOT/.venv/bin/python" -m compileall -q -j 0 "$ROOT/automates" "$ROOT/flows" "$ROOT/tasks" \
  "$ROOT/blocks" "$ROOT/workers" >/dev/null \
  || echo "· could not write the checkout's bytecode (a read-only checkout?): it compiles at import" >&2
export PATH="$ROOT/.venv/bin:$(dirname "$UV"):$PATH"  # uv too: self-repair installs with it
