#!/usr/bin/env python3
"""Checks two invariants of ARCHITECTURE.md that a machine can check, and exits 1 when one fails.

1. No module cycles inside a crate. A module's edges are the paths it names (`crate::a::b`,
   `super::c`, `self::d`); a name re-exported by a facade (`pub use` in `lib.rs` or a `mod.rs`)
   resolves to the module that defines it, and the facade's own `pub use` lines are not edges.
   Unit-test modules (`#[cfg(test)]`) are left out: a test may use anything.
2. No Rust source file over 800 lines (a file you would not want to open is a file to split),
   except those listed in LONG_FILES with the reason.
3. The numeric crates (`cbf`, `register`, `stats`, `receptor`) take arrays and typed parameters:
   their non-test code names no file system, no paths, no environment, no YAML and no terminal
   output, and their manifests depend on no YAML parser. (`image` reads and writes NIfTI: exempt.)

Run: python3 .ci/architecture.py [crates-dir]
"""

import re
import sys
from pathlib import Path

NUMERIC_CRATES = ["cbf", "register", "stats", "receptor"]
# what a pure kernel does not name
IMPURE = re.compile(
    r"\bstd::fs\b|\bstd::path\b|\bPathBuf\b|\bPath\b|\bstd::env\b|\bprintln!|\beprintln!|\bprint!"
    r"|\beprint!|\byaml\b|\bsaphyr\b|\bFile::"
)
MAX_LINES = 800
# file → why it is longer than MAX_LINES (none at present)
LONG_FILES: dict = {}
IMPURE_DEPS = re.compile(r"^\s*(serde[-_]saphyr|serde[-_]yaml|serde[-_]yml|saphyr|yaml-rust2?)\b")

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
PATH_RE = re.compile(rf"\b(crate|super|self)::((?:{IDENT}::)*(?:{IDENT}|\{{[^;]*?\}}))", re.S)


def non_test_code(text: str) -> str:
    """The text without comments, string literals, and `#[cfg(test)]` items (a brace-matched
    block after the attribute)."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif text[i] == '"' or text.startswith('r"', i) or text.startswith('r#"', i):
            if text[i] == "r":
                hashes = text[i + 1 : text.index('"', i)].count("#")
                end = '"' + "#" * hashes
                j = text.find(end, text.index('"', i) + 1)
                i = n if j < 0 else j + len(end)
            else:
                j = i + 1
                while j < n and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                i = j + 1
            out.append('""')
        elif text[i] == "'" and re.match(r"'(\\.|[^\\'])'", text[i : i + 4]):
            m = re.match(r"'(\\.|[^\\'])'", text[i:])
            i += m.end()
            out.append("' '")
        elif text.startswith("#[cfg(test)]", i):
            # skip the attribute and the item it gates: up to the end of its brace block or `;`
            j = i + len("#[cfg(test)]")
            depth = 0
            while j < n:
                c = text[j]
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                    if depth == 0:
                        j += 1
                        break
                elif c == ";" and depth == 0:
                    j += 1
                    break
                j += 1
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def modules(src: Path) -> dict:
    """Module path (tuple) → file, for every `.rs` file under `src` (bin targets left out)."""
    mods = {}
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src)
        if rel.parts[0] == "bin" or rel.name == "main.rs" and len(rel.parts) == 1:
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] in ("lib", "mod"):
            parts = parts[:-1]
        mods[tuple(parts)] = f
    return mods


def expand(path: str) -> list:
    """`a::{b::C, d}` → [`a::b::C`, `a::d`] (one level of braces is enough here)."""
    m = re.match(r"^(.*?)\{(.*)\}$", path, re.S)
    if not m:
        return [path]
    head, body = m.group(1), m.group(2)
    items, depth, cur = [], 0, ""
    for c in body:
        if c == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += c == "{"
        depth -= c == "}"
        cur += c
    items.append(cur)
    out = []
    for it in items:
        it = re.sub(r"\s+as\s+\w+$", "", it.strip())
        if it and it != "self":
            out.extend(expand(head + it))
        elif it == "self":
            out.append(head.rstrip(":"))
    return out


def crate_graph(src: Path):
    mods = modules(src)
    texts = {m: non_test_code(f.read_text()) for m, f in mods.items()}
    facade = {m: (f.name in ("lib.rs", "mod.rs")) for m, f in mods.items()}
    # names defined by re-export in a facade: (facade module, name) → path it re-exports
    reexports = {}
    for m, t in texts.items():
        if not facade[m]:
            continue
        for use in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", t):
            for p in expand(re.sub(r"\s+", "", use.group(1)).replace("::{", "::{")):
                segs = p.split("::")
                if segs[0] in ("crate", "self", "super"):
                    base = absolute(m, segs)
                else:
                    base = m + tuple(segs)
                reexports[(m, base[-1])] = base

    def resolve(segs: tuple, depth=0) -> tuple:
        """The module a path names: its longest module prefix, through re-exports."""
        for k in range(len(segs), -1, -1):
            prefix = segs[:k]
            if prefix in mods:
                if k < len(segs) and (prefix, segs[k]) in reexports and depth < 10:
                    return resolve(reexports[(prefix, segs[k])], depth + 1)
                return prefix
        return ()

    edges = {m: set() for m in mods}
    for m, t in texts.items():
        body = t
        if facade[m]:
            body = re.sub(r"\bpub(?:\([^)]*\))?\s+use\s+[^;]+;", "", body)
        for hit in PATH_RE.finditer(body):
            for p in expand(hit.group(1) + "::" + re.sub(r"\s+", "", hit.group(2))):
                target = resolve(absolute(m, p.split("::")))
                if target != m and target in mods:
                    edges[m].add(target)
    return mods, edges


def absolute(m: tuple, segs: list) -> tuple:
    """A `crate::`/`super::`/`self::` path seen in module `m`, as an absolute tuple."""
    segs = list(segs)
    if segs[0] == "crate":
        return tuple(segs[1:])
    base = list(m)
    while segs and segs[0] in ("super", "self"):
        if segs.pop(0) == "super":
            base = base[:-1]
    return tuple(base + segs)


def cycles(edges: dict) -> list:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def name(m: tuple) -> str:
    return "crate" if not m else "::".join(m)


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "crates")
    failures = []
    n_mods = 0
    for crate in sorted(p for p in root.iterdir() if (p / "src").is_dir()):
        mods, edges = crate_graph(crate / "src")
        n_mods += len(mods)
        for comp in cycles(edges):
            detail = "; ".join(
                f"{name(a)} → {name(b)}" for a in comp for b in sorted(edges[a]) if b in comp
            )
            failures.append(f"{crate.name}: module cycle {{{', '.join(map(name, comp))}}}: {detail}")
    for f in sorted(root.rglob("*.rs")):
        n = f.read_text().count("\n")
        if n > MAX_LINES and str(f) not in LONG_FILES:
            failures.append(f"{f}: {n} lines (more than {MAX_LINES}): split it by concern")
    for crate in NUMERIC_CRATES:
        src = root / crate / "src"
        for f in sorted(src.rglob("*.rs")):
            for k, line in enumerate(non_test_code(f.read_text()).splitlines(), 1):
                hit = IMPURE.search(line)
                if hit:
                    failures.append(f"{f}: names {hit.group(0)!r} (numeric crates do no I/O): {line.strip()}")
        manifest = root / crate / "Cargo.toml"
        section = None
        for line in manifest.read_text().splitlines():
            if line.startswith("["):
                section = line.strip()
            elif section == "[dependencies]" and IMPURE_DEPS.match(line):
                failures.append(f"{manifest}: depends on a YAML parser: {line.strip()}")
    for f in failures:
        print(f, file=sys.stderr)
    if failures:
        print(f"architecture: {len(failures)} problems", file=sys.stderr)
        return 1
    print(
        f"architecture: {n_mods} modules, no module cycles, no file over {MAX_LINES} lines; numeric crates "
        f"({', '.join(NUMERIC_CRATES)}) name no files, paths, environment, YAML or terminal"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
