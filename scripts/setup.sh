#!/usr/bin/env bash
# Set up geoprobe on a fresh machine: system data, the CPU build of torch, and geoprobe itself
# with every extra and the test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# WordNet 3.0 for the taxonomy probes. NLTK's downloader needs the internet; Debian and
# Ubuntu ship the dictionary files, which geoprobe assembles into a directory NLTK accepts.
if [ ! -f /usr/share/wordnet/data.noun ] || [ ! -f /usr/share/wordnet/index.sense ]; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""
        if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wordnet-base wordnet-sense-index
    else
        echo "setup: no apt-get; install WordNet 3.0 yourself (see docs/taxonomy.md)" >&2
    fi
fi

# torch is pinned to the CPU wheel: an unpinned torch pulls a multi-gigabyte CUDA build.
python -m pip install --quiet "torch==2.13.0" -e ".[all,test]"
