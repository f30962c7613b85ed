#!/usr/bin/env bash
# Lay out cbflow's resource directory from docker/resources.tsv, every file checked against its
# pinned sha256 (a mismatch stops with the file and URL named; nothing unchecked is kept).
#
#   fetch-resources.sh MANIFEST DEST               download from the pinned URLs into DEST
#   fetch-resources.sh --check MANIFEST DIR        verify the pins against an existing resource
#                                                  directory laid out the same way (no network)
#
# Used by the with-resources stage of docker/Dockerfile; the --check form runs in CI against
# ../shared/data. Needs bash, coreutils, gzip, curl and unzip (the last two only to download).
set -euo pipefail

usage() {
    echo "usage: $0 MANIFEST DEST | $0 --check MANIFEST DIR" >&2
    exit 2
}

check_only=false
if [ "${1:-}" = "--check" ]; then
    check_only=true
    shift
fi
[ $# -eq 2 ] || usage
manifest=$1
dest=$2

# sha256 of the bytes the pin is about: the file itself, or the uncompressed content for entries
# that are gzipped after download.
pinned_sum() { # how file
    case "$1" in
    gzip) gzip -dc "$2" | sha256sum | cut -d' ' -f1 ;;
    *) sha256sum "$2" | cut -d' ' -f1 ;;
    esac
}

fail() {
    echo "fetch-resources: $*" >&2
    exit 1
}

downloads=$(mktemp -d)
trap 'rm -rf "$downloads"' EXIT

n=0
while IFS=$'\t' read -r path sha how url; do
    case "$path" in '' | '#'*) continue ;; esac
    [ -n "$url" ] || fail "$manifest: malformed line for $path"
    case "$path" in /* | *..*) fail "$manifest: destination must be a relative path: $path" ;; esac
    n=$((n + 1))

    if $check_only; then
        [ -f "$dest/$path" ] || fail "missing: $dest/$path"
        got=$(pinned_sum "$how" "$dest/$path")
        [ "$got" = "$sha" ] || fail "sha256 mismatch for $dest/$path: pinned $sha, found $got"
        continue
    fi

    # One download per URL (several entries can come from one zip).
    key=$(printf '%s' "$url" | sha256sum | cut -c1-32)
    if [ ! -f "$downloads/$key" ]; then
        curl --fail --silent --show-error --location --retry 3 --connect-timeout 30 \
            --max-time 600 -o "$downloads/$key.part" "$url" || fail "download failed: $url"
        mv "$downloads/$key.part" "$downloads/$key"
    fi

    staged=$downloads/staged
    case "$how" in
    copy | gzip) cp "$downloads/$key" "$staged" ;;
    unzip:*) unzip -p "$downloads/$key" "${how#unzip:}" >"$staged" || fail "no ${how#unzip:} in $url" ;;
    *) fail "$manifest: unknown method '$how' for $path" ;;
    esac
    got=$(sha256sum "$staged" | cut -d' ' -f1)
    [ "$got" = "$sha" ] || fail "sha256 mismatch for $path from $url: pinned $sha, got $got"

    mkdir -p "$dest/$(dirname "$path")"
    if [ "$how" = gzip ]; then
        gzip -n -9 -c "$staged" >"$dest/$path"
    else
        mv "$staged" "$dest/$path"
    fi
    chmod 0644 "$dest/$path"
done <"$manifest"

[ "$n" -gt 0 ] || fail "$manifest lists no files"
if $check_only; then
    echo "fetch-resources: $n pinned files match $dest"
else
    echo "fetch-resources: $n files verified into $dest"
fi
