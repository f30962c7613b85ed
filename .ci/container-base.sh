#!/usr/bin/env bash
# Make the two base images that docker/Dockerfile names, locally, for CI machines that have no
# container registry (only Debian's mirror and crates.io are reachable there):
#   DEBIAN_IMAGE (the runtime stage): Debian bookworm from debootstrap --variant=minbase, trimmed
#     the way the official debian:*-slim images are (no docs, man pages or locales);
#   RUST_IMAGE (the build stage): that image + gcc, libc6-dev, ca-certificates and this machine's
#     Rust toolchain (rustc, cargo and the std library copied from `rustc --print sysroot`),
#     laid out like the official rust image (RUSTUP_HOME, CARGO_HOME, PATH).
# Each is tagged with the public name the Dockerfile uses, so the Dockerfile builds unchanged here
# and, elsewhere, from the real public images. An image that already exists is left alone
# (idempotent; remove it with `podman rmi` to rebuild). Called by .ci/container.sh; runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_IMAGE=${DEBIAN_IMAGE:-docker.io/library/debian:bookworm-slim}
RUST_IMAGE=${RUST_IMAGE:-docker.io/library/rust:1.95-slim-bookworm}
rust_version=${RUST_IMAGE##*:}
rust_version=${rust_version%%-*}          # 1.95

tmp=$(mktemp -d /var/tmp/cbflow-base.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if podman image exists "$DEBIAN_IMAGE"; then
    echo "base image $DEBIAN_IMAGE present"
else
    echo "building $DEBIAN_IMAGE with debootstrap (about a minute)"
    mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$tmp/rootfs
    timeout 900 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
        tail -20 "$tmp/debootstrap.log" >&2
        exit 1
    }
    # What the official slim images do: keep dpkg from installing docs, man pages and locales
    # (copyright files stay), and drop the ones debootstrap already installed.
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/lintian/*
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    # The mirror debootstrap used, in the format the official images have.
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    tar -C "$rootfs" --numeric-owner -c . |
        podman import --change 'CMD ["bash"]' - "$DEBIAN_IMAGE" >/dev/null
    rm -rf "$rootfs"
fi

if podman image exists "$RUST_IMAGE"; then
    echo "base image $RUST_IMAGE present"
else
    # Outside the repository, so that the machine's default toolchain answers, not the pin.
    sysroot=$(readlink -f "$(cd / && rustc --print sysroot)")
    have=$("$sysroot/bin/rustc" --version | awk '{print $2}')
    case "$have" in
    "$rust_version" | "$rust_version".*) ;;
    *)
        echo "$RUST_IMAGE wants Rust $rust_version but this machine has $have" >&2
        exit 1
        ;;
    esac
    echo "building $RUST_IMAGE from $DEBIAN_IMAGE and the machine's Rust $have ($sysroot)"
    cat >"$tmp/Containerfile" <<EOF
FROM $DEBIAN_IMAGE
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin RUST_VERSION=$have
RUN apt-get update \\
 && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \\
 && rm -rf /var/lib/apt/lists/*
RUN set -e; tc=/usr/local/rustup/toolchains/$have-x86_64-unknown-linux-gnu; mkdir -p "\$tc/bin" /usr/local/cargo/bin; \\
    cp -a /toolchain/lib /toolchain/libexec "\$tc/"; \\
    cp -a /toolchain/bin/rustc /toolchain/bin/cargo /toolchain/bin/rustdoc "\$tc/bin/"; \\
    for b in rustc cargo rustdoc; do ln -s "\$tc/bin/\$b" "/usr/local/cargo/bin/\$b"; done; \\
    rustc --version; cargo --version
EOF
    timeout 1200 podman build --pull=never -q -v "$sysroot:/toolchain:ro" \
        -t "$RUST_IMAGE" -f "$tmp/Containerfile" "$tmp" >/dev/null
fi
