#!/usr/bin/env bash
# Install the Debian packages that curate.corpus reads (see docs/corpus.md). Man pages,
# changelogs, copyright files and the Python standard library are already installed.
# Run as root (or with sudo) on Debian 12 (bookworm).
set -euo pipefail

packages=(python3.11-doc linux-doc-6.1 dict-gcide wordnet-base perl-doc debian-handbook)

apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"
