#!/usr/bin/env python3
"""T1w -> MNI152 normalisation, cbflow side by side with ANTsPy SyN, in one run.

Cases (each run by both tools on the same files, alternately):
  pair             a 1 mm ICBM 2009a T1w (skull-stripped), deformed by a known affine and a
                   smooth warp (made here with scipy), to the 2 mm FSL MNI152 T1 (whole head)
  mprage           the real 1 mm Siemens MPRAGE of shared/data/real-anat, as given (with skull)
  mprage-stripped  the same MPRAGE multiplied by the brain mask ANTs found on it
  synth            the two T1w images of a cbflow synth study (MNI path: scalp, skull, CSF,
                   meninges, bias field, Rician noise, each through its own deformation)

Scores:
  GM Dice          the subject's grey-matter probability map (known where a truth exists) warped
                   to the template by each tool's own transforms, > 0.5, against the template's
                   GM mask (gm_mask_2mm)
  brain Dice       the subject's brain mask warped to the template, against the template brain
                   mask; on the real MPRAGE: each tool's brain mask on the T1w grid against ANTs'
                   (the template mask pulled back by ANTs' inverse transforms)
  wall, peak RSS   of each tool's registration as a child process, 2 threads

Usage:
  python3 benchmarks/registration.py --cbflow target/release/cbflow [--data ../shared/data]
      [--out /tmp/cbflow-regbench] [--cases pair,mprage,mprage-stripped,synth] [--small]

`--small` runs the pair case on a 2 mm subject (what CI runs); the full run takes a few minutes.
Requires numpy, nibabel, scipy and antspyx (PyPI).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent


# runs argv[1:] and prints its peak RSS (KiB): a fresh launcher per child, so RUSAGE_CHILDREN
# is that one child's
LAUNCHER = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
    "print('peak-rss-kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
    "sys.exit(r.returncode)"
)


def child(cmd, env):
    """Runs cmd; returns (wall seconds, peak RSS MiB, stdout)."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", LAUNCHER, *map(str, cmd)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}")
    rss = [l for l in r.stderr.splitlines() if l.startswith("peak-rss-kib")][-1].split()[1]
    return wall, int(rss) / 1024.0, r.stdout


def dice(a, b):
    a, b = a > 0.5, b > 0.5
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def deform_pair(data, out, small):
    """The benchmark subject: ICBM T1, GM and brain mask through a known affine + smooth warp."""
    icbm = data / "templates/nilearn_icbm152_2009a_1mm"
    t1 = nib.load(icbm / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    gm = nib.load(icbm / "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz")
    aff = t1.affine.copy()
    shape = t1.shape
    if small:
        aff = aff @ np.diag([2, 2, 2, 1])
        shape = tuple(int(np.ceil(s / 2)) for s in shape)
    centre = t1.affine @ np.r_[(np.array(t1.shape) - 1) / 2, 1]
    # subject world y -> ICBM world x = A(warp(y)): the same deformation as the Rust example
    a = np.array([[1.04, 0.02, 0.0], [-0.01, 0.97, 0.03], [0.0, -0.02, 1.02]])
    rx, ry, rz = 0.06, -0.04, 0.08
    Rx = np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
    Ry = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
    Rz = np.array([[np.cos(rz), -np.sin(rz), 0], [np.sin(rz), np.cos(rz), 0], [0, 0, 1]])
    lin = Rz @ Ry @ Rx @ a
    shift = np.array([4.0, -6.0, 3.0])
    ijk = np.indices(shape).reshape(3, -1).astype(float)
    y = (aff[:3, :3] @ ijk) + aff[:3, 3:4]
    k = 2 * np.pi / 90.0
    w = np.stack([y[0] + 3 * np.sin(k * y[1] + 0.3), y[1] + 3 * np.sin(k * y[2] + 1.1),
                  y[2] + 3 * np.sin(k * y[0] + 2.0)])
    x = lin @ (w - centre[:3, None]) + centre[:3, None] + shift[:, None]
    src = np.linalg.inv(t1.affine) @ np.vstack([x, np.ones(x.shape[1])])
    outs = {}
    for name, img, order in [("T1w", t1, 1), ("gm", gm, 1)]:
        v = ndimage.map_coordinates(img.get_fdata(), src[:3], order=order, mode="constant")
        outs[name] = v.reshape(shape).astype(np.float32)
    outs["brain"] = (outs["T1w"] > 0).astype(np.float32)
    outs["gm"] = outs["gm"] / 255.0
    paths = {}
    for name, v in outs.items():
        p = out / f"pair_{name}.nii.gz"
        nib.save(nib.Nifti1Image(v, aff), p)
        paths[name] = p
    return paths


def run_ants(fixed, moving, out, extra_to_template, to_subject, env):
    """ANTsPy SyN as a child interpreter; writes the warped images and the pulled-back mask."""
    script = f"""
import ants, json, time
f = ants.image_read({str(fixed)!r}); m = ants.image_read({str(moving)!r})
t = time.perf_counter()
r = ants.registration(fixed=f, moving=m, type_of_transform="SyN")
reg = time.perf_counter() - t
for src, dst in {[(str(a), str(b)) for a, b in extra_to_template]!r}:
    ants.image_write(ants.apply_transforms(f, ants.image_read(src), r["fwdtransforms"]), dst)
for src, dst in {[(str(a), str(b)) for a, b in to_subject]!r}:
    ants.image_write(ants.apply_transforms(m, ants.image_read(src), r["invtransforms"],
                     whichtoinvert=[True, False]), dst)
print(json.dumps({{"registration_s": reg}}))
"""
    wall, rss, stdout = child([sys.executable, "-c", script], env)
    return json.loads(stdout.strip().splitlines()[-1])["registration_s"], wall, rss


def run_cbflow(cbflow, moving, out, warp, resources, env):
    cmd = [cbflow, "normalise", str(moving), str(out), "--resources", str(resources)]
    for w in warp:
        cmd += ["--warp", str(w)]
    wall, rss, _ = child(cmd, env)
    return wall, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cbflow", required=True)
    ap.add_argument("--data", default=str(HERE / "../../shared/data"))
    ap.add_argument("--out", default="/tmp/cbflow-regbench")
    ap.add_argument("--cases", default="pair,mprage,mprage-stripped,synth")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tools", default="ants,cbflow", help="ants,cbflow (default) or one of them")
    a = ap.parse_args()
    data = Path(a.data).resolve()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(a.threads)
    env["RAYON_NUM_THREADS"] = str(a.threads)
    env["OMP_NUM_THREADS"] = str(a.threads)
    tpl_dir = data / "templates/fsl_mni152nlin6asym_2mm"
    template = tpl_dir / "MNI152_T1_2mm.nii.gz"
    tpl_brain = nib.load(tpl_dir / "MNI152_T1_2mm_brain_mask.nii.gz").get_fdata()
    tpl_gm = nib.load(tpl_dir / "gm_mask_2mm.nii.gz").get_fdata()
    rows = []

    tools = a.tools.split(",")

    def truth_case(name, t1w, gm, brain, ref_gm=tpl_gm, ref_brain=tpl_brain):
        res = {}
        for tool in tools:
            d = out / f"{name}-{tool}"
            d.mkdir(exist_ok=True)
            if tool == "ants":
                reg_s, wall, rss = run_ants(template, t1w, d, [(gm, d / "gm.nii.gz"), (brain, d / "brain.nii.gz")], [], env)
                gm_t = nib.load(d / "gm.nii.gz").get_fdata()
                br_t = nib.load(d / "brain.nii.gz").get_fdata()
            else:
                wall, rss = run_cbflow(a.cbflow, t1w, d, [gm, brain], data, env)
                gm_t = nib.load(d / f"{Path(gm).name.split('.')[0]}_space-MNI152NLin6Asym.nii.gz").get_fdata()
                br_t = nib.load(d / f"{Path(brain).name.split('.')[0]}_space-MNI152NLin6Asym.nii.gz").get_fdata()
            res[tool] = dict(gm_dice=dice(gm_t, ref_gm), brain_dice=dice(br_t, ref_brain), wall_s=wall, rss_mib=rss)
            rows.append((name, tool, res[tool]))
        return res

    def mask_case(name, t1w, reference_mask=None):
        res = {}
        for tool in tools:
            d = out / f"{name}-{tool}"
            d.mkdir(exist_ok=True)
            if tool == "ants":
                reg_s, wall, rss = run_ants(template, t1w, d, [], [(tpl_dir / "MNI152_T1_2mm_brain_mask.nii.gz", d / "brain_mask.nii.gz")], env)
                m = nib.load(d / "brain_mask.nii.gz").get_fdata() > 0.5
            else:
                wall, rss = run_cbflow(a.cbflow, t1w, d, [], data, env)
                m = nib.load(d / "T1w_desc-brain_mask.nii.gz").get_fdata() > 0.5
            res[tool] = dict(mask=m, wall_s=wall, rss_mib=rss)
        ref = reference_mask if reference_mask is not None else res["ants"]["mask"] if "ants" in res else ants_reference(name)
        for tool in tools:
            r = dict(mask_dice_vs_ants=dice(res[tool]["mask"], ref), wall_s=res[tool]["wall_s"], rss_mib=res[tool]["rss_mib"])
            rows.append((name, tool, r))
        return res

    def ants_reference(name):
        # a cbflow-only run scores the MPRAGE masks against an earlier ANTs run's
        m = out / f"{name.replace('-stripped', '')}-ants" / "brain_mask.nii.gz"
        if not m.exists():
            raise SystemExit(f"{m}: no ANTs mask from an earlier run to compare with (run with --tools ants,cbflow once)")
        return nib.load(m).get_fdata() > 0.5

    cases = a.cases.split(",")
    if "pair" in cases:
        p = deform_pair(data, out, a.small)
        truth_case("pair" + ("-small" if a.small else ""), p["T1w"], p["gm"], p["brain"])
    ants_mask = None
    if "mprage" in cases or "mprage-stripped" in cases:
        mprage = data / "real-anat/sub-01_T1w.nii.gz"
        res = mask_case("mprage", mprage)
        ants_mask = res["ants"]["mask"] if "ants" in res else ants_reference("mprage")
    if "mprage-stripped" in cases:
        img = nib.load(mprage)
        stripped = out / "mprage_stripped.nii.gz"
        nib.save(nib.Nifti1Image((img.get_fdata() * ants_mask).astype(np.float32), img.affine), stripped)
        mask_case("mprage-stripped", stripped, reference_mask=ants_mask)
    if "synth" in cases:
        sd = out / "synth"
        if not (sd / "bids").exists():
            subprocess.run([a.cbflow, "synth", str(sd / "bids"), "--subjects", "2", "--templates", str(data)], check=True, env=env)
        # the synthetic anatomy is the SPM12 tissue priors (cbflow synth's template space), so
        # they are the truth in template space: grey > 0.5, grey + white > 0.5
        spm = data / "templates/spm12_2mm"
        pri = {t: nib.load(spm / f"{t}.nii.gz").get_fdata() for t in ["grey", "white", "csf"]}
        top = max(v.max() for v in pri.values())
        for sub in ["01", "02"]:
            t1w = sd / f"bids/sub-{sub}/ses-1/anat/sub-{sub}_ses-1_T1w.nii.gz"
            truth = sd / f"bids/derivatives/truth/sub-{sub}/ses-1/anat"
            truth_case(
                f"synth-sub-{sub}",
                t1w,
                truth / f"sub-{sub}_ses-1_label-GM_probseg.nii.gz",
                truth / f"sub-{sub}_ses-1_desc-brain_mask.nii.gz",
                ref_gm=pri["grey"] / top,
                ref_brain=(pri["grey"] + pri["white"]) / top,
            )

    print(f"\n{'case':<18}{'tool':<8}{'GM Dice':>9}{'brain Dice':>12}{'mask Dice vs ANTs':>19}{'wall s':>9}{'peak MiB':>10}")
    for name, tool, r in rows:
        f = lambda k: f"{r[k]:.3f}" if k in r else "—"
        print(f"{name:<18}{tool:<8}{f('gm_dice'):>9}{f('brain_dice'):>12}{f('mask_dice_vs_ants'):>19}{r['wall_s']:>9.1f}{r['rss_mib']:>10.0f}")
    (out / "results.json").write_text(json.dumps([(n, t, {k: float(v) for k, v in r.items()}) for n, t, r in rows], indent=1))


if __name__ == "__main__":
    main()
