#!/usr/bin/env python3
"""The module graph, read from Package.swift (`swift package describe --type json`): the one place
it is declared. scripts/check-layers.sh checks the imports and docs/ARCHITECTURE.md against it;
fuzz/run.sh builds each fuzz target's modules from it.

    python3 scripts/modules.py deps MODULE       # MODULE's direct dependencies (ours and packages')
    python3 scripts/modules.py closure MODULE    # every module below MODULE, dependencies first
    python3 scripts/modules.py kind MODULE       # library, executable, system-target or product
    python3 scripts/modules.py plan MODULE       # how to build MODULE: one line per module below it
                                                 # and itself, dependencies first:
                                                 # NAME LANG DEP... (LANG: swift, c, system, product)
    python3 scripts/modules.py graph             # the whole graph as JSON

Only targets under Sources/ count; a package product (Logging, Crypto, ...) appears as a
dependency of kind "product".
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def graph():
    """{module: {"kind": ..., "deps": [...]}} for the targets under Sources/ and the products
    they use."""
    out = subprocess.run(["swift", "package", "describe", "--type", "json"], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"modules: swift package describe failed: {out.stderr.strip()[-500:]}")
    desc = json.loads(out.stdout)
    g = {}
    for t in desc["targets"]:
        if not t.get("path", "").startswith("Sources/"):
            continue
        deps = list(t.get("target_dependencies") or []) + list(t.get("product_dependencies") or [])
        g[t["name"]] = {"kind": t["type"], "deps": deps}
    for m in list(g.values()):
        for d in m["deps"]:
            g.setdefault(d, {"kind": "product", "deps": []})
    return g


def closure(g, module):
    """Every module below `module`, each after its own dependencies."""
    order, seen = [], set()

    def visit(m):
        for d in g[m]["deps"]:
            if d not in seen:
                seen.add(d)
                visit(d)
                order.append(d)
    visit(module)
    return order


def language(g, m):
    """swift, c (a C target: its .c files), system (a system library's module map) or product."""
    kind = g[m]["kind"]
    if kind in ("product", "system-target"):
        return "product" if kind == "product" else "system"
    folder = os.path.join(ROOT, "Sources", m)
    return "c" if any(f.endswith(".c") for f in os.listdir(folder)) else "swift"


def main(argv):
    g = graph()
    if argv == ["graph"]:
        print(json.dumps(g, indent=1, sort_keys=True))
    elif len(argv) == 2 and argv[0] == "plan" and argv[1] in g:
        for m in closure(g, argv[1]) + [argv[1]]:
            print(" ".join([m, language(g, m)] + g[m]["deps"]))
    elif len(argv) == 2 and argv[0] in ("deps", "closure", "kind"):
        if argv[1] not in g:
            sys.exit(f"modules: no module {argv[1]} under Sources/ in Package.swift")
        if argv[0] == "deps":
            print(" ".join(g[argv[1]]["deps"]))
        elif argv[0] == "closure":
            print(" ".join(closure(g, argv[1])))
        else:
            print(g[argv[1]]["kind"])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
