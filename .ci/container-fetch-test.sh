#!/usr/bin/env bash
# Tests docker/fetch-resources.sh, the build-time resource path of the Dockerfile's with-resources
# target, without the network: a local mirror of the pinned URLs is made from a resource directory
# (../shared/data; copies documented there as unchanged from those URLs), the manifest's URLs are
# pointed at it (file://), and the script must lay out a resource directory whose files match the
# originals. Then one mirrored file is corrupted and the script must refuse it.
#   .ci/container-fetch-test.sh RESOURCE_DIR
# Called by .ci/container.sh. Needs curl, unzip, gzip, python3 (to write the zip).
set -euo pipefail
cd "$(dirname "$0")/.."
resources=$(cd "${1:?usage: $0 RESOURCE_DIR}" && pwd)
manifest=docker/resources.tsv

tmp=$(mktemp -d /var/tmp/cbflow-fetch-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mirror=$tmp/mirror

# The mirror: each URL's path under $mirror, holding what the URL serves.
declare -A zip_members=()
while IFS=$'\t' read -r path _sha how url; do
    case "$path" in '' | '#'*) continue ;; esac
    local_path=$mirror/${url#https://}
    mkdir -p "$(dirname "$local_path")"
    case "$how" in
    copy) cp "$resources/$path" "$local_path" ;;
    gzip) gzip -dc "$resources/$path" >"$local_path" ;;
    unzip:*) zip_members[$local_path]+="${how#unzip:}=$resources/$path"$'\n' ;;
    esac
done <"$manifest"
for zip in "${!zip_members[@]}"; do
    printf '%s' "${zip_members[$zip]}" | python3 -c '
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for line in sys.stdin.read().splitlines():
        member, src = line.split("=", 1)
        z.write(src, member)
' "$zip"
done
sed "s|https://|file://$mirror/|" "$manifest" >"$tmp/manifest.tsv"

bash docker/fetch-resources.sh "$tmp/manifest.tsv" "$tmp/dest"
n=0
while IFS=$'\t' read -r path _sha how _url; do
    case "$path" in '' | '#'*) continue ;; esac
    if [ "$how" = gzip ]; then
        cmp <(gzip -dc "$tmp/dest/$path") <(gzip -dc "$resources/$path")
    else
        cmp "$tmp/dest/$path" "$resources/$path"
    fi
    n=$((n + 1))
done <"$manifest"
echo "fetch test: $n files laid out from the mirror, identical to $resources"

# A changed file must stop the script, naming it.
victim=$(find "$mirror" -name 'MNI152_T1_2mm.nii.gz')
printf 'x' >>"$victim"
if bash docker/fetch-resources.sh "$tmp/manifest.tsv" "$tmp/dest2" 2>"$tmp/err"; then
    echo "fetch test: a corrupted download was accepted" >&2
    exit 1
fi
grep -q 'sha256 mismatch for templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm.nii.gz' "$tmp/err" || {
    cat "$tmp/err" >&2
    exit 1
}
echo "fetch test: a corrupted download is refused ($(head -c 120 "$tmp/err")...)"
