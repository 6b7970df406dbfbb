#!/usr/bin/env bash
# Set up geoprobe on a stock Debian/Ubuntu machine (only /usr/bin/python3 needed), or inside an
# environment the user already has active. Safe to run again: what is there is kept.
#
#   bash scripts/setup.sh              # creates ./.venv unless a venv/conda env is active
#
# What it does:
#   1. WordNet 3.0 from Debian's packages (wordnet-base, wordnet-sense-index) when missing;
#      NLTK's downloader needs the internet, geoprobe assembles the files NLTK reads.
#   2. Picks the environment: the active virtual environment ($VIRTUAL_ENV) or conda
#      environment ($CONDA_PREFIX) if there is one, else ./.venv made with `python3 -m venv`
#      (installing python3-venv through apt-get when the system Python lacks it). The system
#      pip itself is never used: PEP 668 refuses it on current Debian and Ubuntu.
#   3. Installs the CPU build of torch (pinned: an unpinned torch pulls gigabytes of CUDA) and
#      geoprobe in editable mode with every extra and the test tools. On a machine where the
#      default index serves torch's CUDA build, set GEOPROBE_TORCH_INDEX to PyTorch's CPU
#      wheel index and the CPU build is taken from there.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
say() { echo "setup: $*"; }
die() { echo "setup: error: $*" >&2; exit 1; }

TORCH_PIN="torch==2.13.0"
MIN_PY="3.11"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
apt_updated=""
apt_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    if [ -z "$apt_updated" ]; then
        $SUDO apt-get update -qq && apt_updated=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# 1. WordNet 3.0 for the taxonomy probes.
if [ -f /usr/share/wordnet/data.noun ] && [ -f /usr/share/wordnet/index.sense ]; then
    say "WordNet 3.0: found in /usr/share/wordnet"
elif apt_install wordnet-base wordnet-sense-index; then
    say "WordNet 3.0: installed from Debian's packages"
else
    say "WordNet 3.0: no apt-get here; install it yourself for the taxonomy probes (docs/taxonomy.md)"
fi

# 2. The Python environment to install into.
python_ok() {  # usage: python_ok INTERPRETER -> true when it exists and is >= MIN_PY
    "$1" -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$MIN_PY'.split('.'))))" \
        >/dev/null 2>&1
}
if [ -n "${VIRTUAL_ENV:-}" ]; then
    PY="$VIRTUAL_ENV/bin/python"
    say "installing into the active virtual environment $VIRTUAL_ENV (not ./.venv)"
elif [ -n "${CONDA_PREFIX:-}" ]; then
    PY="$CONDA_PREFIX/bin/python"
    say "installing into the active conda environment $CONDA_PREFIX (not ./.venv)"
else
    PY=".venv/bin/python"
    if python_ok "$PY" && "$PY" -m pip --version >/dev/null 2>&1; then
        say "virtual environment: reusing ./.venv"
    else
        SYS_PY="$(command -v python3 || true)"
        [ -n "$SYS_PY" ] || die "no python3 on PATH; install Python >= $MIN_PY (apt-get install python3)"
        python_ok "$SYS_PY" || die "$SYS_PY is $("$SYS_PY" --version 2>&1); geoprobe needs Python >= $MIN_PY"
        if ! "$SYS_PY" -c "import ensurepip, venv" >/dev/null 2>&1; then
            ver="$("$SYS_PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
            apt_install python3-venv "python$ver-venv" || apt_install python3-venv \
                || die "$SYS_PY has no venv module; install python3-venv"
        fi
        rm -rf .venv
        "$SYS_PY" -m venv .venv
        say "virtual environment: created ./.venv with $SYS_PY ($("$SYS_PY" --version 2>&1))"
    fi
fi
python_ok "$PY" || die "$PY is missing or older than Python $MIN_PY"

# 3. torch (CPU wheel) and geoprobe with all extras and the test tools.
say "pip install $TORCH_PIN -e .[all,test] into $("$PY" -c 'import sys; print(sys.prefix)')"
index=()
if [ -n "${GEOPROBE_TORCH_INDEX:-}" ]; then index=(--extra-index-url "$GEOPROBE_TORCH_INDEX"); fi
"$PY" -m pip install --quiet "${index[@]}" "$TORCH_PIN" -e ".[all,test]"

say "done in $((SECONDS - started)) s. Python: $PY"
if [ "$PY" = ".venv/bin/python" ]; then
    say "run geoprobe as .venv/bin/geoprobe, or 'source .venv/bin/activate' first"
fi
