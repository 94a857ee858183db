#!/usr/bin/env bash
# The pipeline image on a machine with no image registry (the project's Debian 12 machines): podman, runc and
# debootstrap from Debian's packages, a base image made with debootstrap plus this machine's CPython 3.10, then
# the repository's Dockerfile on that base. On a machine that can pull images, `docker build .` is all it takes.
#
#   kubeflow/local_image.sh build [IMAGE] [podman build options...]   the image (default localhost/inatvision:dev)
#   kubeflow/local_image.sh podman ARGS...                             podman with the settings below
#
# Settings that work here: the `runc` runtime (Debian's default crun cannot set rlimits or use hybrid cgroups
# in these sandboxes), fixed ulimits, cgroupfs, file events, and the overlay storage driver mounted by
# fuse-overlayfs (a container starts in about a second; the vfs driver copies the whole image for each one,
# 1.5 to 2 minutes for this image), all under a scratch folder (INATVISION_PODMAN_HOME) so nothing of the
# machine's own podman setup is touched.
set -euo pipefail
cd "$(dirname "$0")/.."

SCRATCH=${INATVISION_PODMAN_HOME:-/var/tmp/inatvision-podman}
PYTHON_HOME=${PYTHON_HOME:-$HOME/.pyenv/versions/3.10.13}
BASE_IMAGE=${BASE_IMAGE:-localhost/inatvision-base:bookworm-py3.10}
export CONTAINERS_CONF=$SCRATCH/containers.conf CONTAINERS_STORAGE_CONF=$SCRATCH/storage.conf

ensure_tools() {
    local tool missing=
    for tool in podman runc debootstrap fuse-overlayfs; do command -v $tool >/dev/null || missing=1; done
    if [ -n "$missing" ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap fuse-overlayfs >/dev/null
    fi
}

write_settings() {
    mkdir -p "$SCRATCH/overlay" "$SCRATCH/run"
    cat > "$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
EOF
    cat > "$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "overlay"
graphroot = "$SCRATCH/overlay"
runroot = "$SCRATCH/run"
[storage.options.overlay]
mount_program = "$(command -v fuse-overlayfs || echo /usr/bin/fuse-overlayfs)"
EOF
}

# Debian bookworm (minbase) with the shared libraries CPython's modules link and a C++ compiler (the lock has
# sdists with C extensions, e.g. pyfarmhash), and CPython 3.10 copied from PYTHON_HOME to /opt/python3.10
# (`python` on PATH; PYTHON_HOME links there, so the paths compiled into it, headers and libpython's runpath,
# hold). The machine's CA bundle goes in so that pip inside the build trusts what pip outside it trusts.
build_base() {
    podman image exists "$BASE_IMAGE" && return
    [ -x "$PYTHON_HOME/bin/python3.10" ] || { echo "no CPython 3.10 at $PYTHON_HOME (set PYTHON_HOME)" >&2; exit 2; }
    local rootfs=$SCRATCH/rootfs
    rm -rf "$rootfs"
    debootstrap --variant=minbase \
        --include=ca-certificates,libssl3,libffi8,zlib1g,libsqlite3-0,libbz2-1.0,liblzma5,libreadline8,libncursesw6,libuuid1,libexpat1,libgomp1,g++ \
        bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
    mkdir -p "$rootfs/opt/python3.10"
    tar -C "$PYTHON_HOME" -c --exclude=./lib/python3.10/test --exclude='*/site-packages/_sandboxing_*' \
        --exclude='__pycache__' . | tar -C "$rootfs/opt/python3.10" -x
    mkdir -p "$rootfs$(dirname "$PYTHON_HOME")"
    ln -s /opt/python3.10 "$rootfs$PYTHON_HOME"
    for name in python python3 python3.10; do ln -sf /opt/python3.10/bin/python3.10 "$rootfs/usr/local/bin/$name"; done
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$rootfs/etc/pip.conf"
    rm -rf "$rootfs/var/cache/apt/archives"/*.deb "$rootfs/var/lib/apt/lists"/*
    tar -C "$rootfs" -c . | podman import --quiet - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
}

build_image() {
    local image=${1:-localhost/inatvision:dev}
    shift || true
    local started=$SECONDS
    build_base
    local base_s=$((SECONDS - started))
    podman build --isolation chroot --network host --pull=never --layers \
        --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$image" "$@" .
    local size
    size=$(podman image inspect --format '{{.Size}}' "$image")
    echo "built $image on $BASE_IMAGE in $((SECONDS - started)) s (base image: $base_s s);" \
         "size $((size / 1000000)) MB"
}

case "${1:-}" in
    build) shift; ensure_tools; write_settings; build_image "$@" ;;
    podman) shift; write_settings; exec podman "$@" ;;
    *) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac
