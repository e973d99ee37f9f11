#!/usr/bin/env bash
# Installs what the arm64 artifact checks and the benchmark need outside the repository: the
# Rust target for cross-compiling, qemu-user with the arm64 C library to run the artifacts,
# valgrind (instruction counts) and openssl (the benchmark's throwaway CA). Idempotent.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
    log "rustup target add aarch64-unknown-linux-gnu"
    rustup target add aarch64-unknown-linux-gnu
fi

packages=""
if ! command -v qemu-aarch64 >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
    packages="qemu-user libc6-arm64-cross"
fi
command -v valgrind >/dev/null || packages="$packages valgrind"
command -v openssl >/dev/null || packages="$packages openssl"
if [ -n "$packages" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        log "apt-get install $packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
    elif command -v sudo >/dev/null; then
        log "sudo apt-get install $packages"
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
    else
        die "install the Debian packages '$packages' (the arm64 artifacts' checks, the benchmark)"
    fi
fi
