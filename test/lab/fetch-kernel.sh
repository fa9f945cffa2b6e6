#!/usr/bin/env bash
# Fetch the Debian kernel the lab boots, without installing it on the host:
# `apt-get download` the generic amd64 image that linux-image-amd64 points at and
# unpack it with dpkg -x into test/lab/.cache/kernel-<version>/. The generic flavour,
# not -cloud: the BIOS lab NIC is an e1000, which the cloud flavour lacks.
# Idempotent: a version already unpacked is not fetched again.
# Prints KERNEL_VERSION=<uname -r>, KERNEL_DIR=<unpacked tree> (modules under
# $KERNEL_DIR/lib/modules) and KERNEL_IMAGE=<the vmlinuz>, as shell assignments.
# Env: KERNEL_PACKAGE overrides the package (e.g. linux-image-6.1.0-56-amd64).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${LAB_CACHE:-$here/.cache}"
mkdir -p "$cache"

pkg="${KERNEL_PACKAGE:-}"
if [[ -z "$pkg" ]]; then
  pkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9].*-amd64$/ { print $2; exit }')"
  [[ -n "$pkg" ]] || { echo "fetch-kernel: apt-cache depends linux-image-amd64 names no linux-image-<version>-amd64" >&2; exit 1; }
fi
version="${pkg#linux-image-}"          # e.g. 6.1.0-56-amd64 (the kernel's uname -r)
dir="$cache/kernel-$version"

if [[ ! -f "$dir/.complete" ]]; then
  work="$(mktemp -d "$cache/.fetch-XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download "$pkg" >&2)
  deb="$(ls "$work"/*.deb)"
  mkdir -p "$work/tree"
  dpkg -x "$deb" "$work/tree"
  [[ -f "$work/tree/boot/vmlinuz-$version" ]] || { echo "fetch-kernel: $deb has no boot/vmlinuz-$version" >&2; exit 1; }
  # The package ships no modules.dep; build it so that modprobe/modinfo work on the tree.
  depmod -b "$work/tree" "$version"
  rm -rf "$dir"
  mv "$work/tree" "$dir"
  touch "$dir/.complete"
fi

echo "KERNEL_VERSION=$version"
echo "KERNEL_DIR=$dir"
echo "KERNEL_IMAGE=$dir/boot/vmlinuz-$version"
