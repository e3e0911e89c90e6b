#!/usr/bin/env bash
# Layers only point down: reads every `import X` under Sources/ and fails when a module imports a
# project module that is not below it in the graph declared here (the same graph as Package.swift
# and docs/ARCHITECTURE.md). Adding a module means adding it here, with what it may build on.
#
#   bash scripts/check-layers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import os, re, sys

# Each module with the project modules directly below it, bottom up. A module may import what is
# below it, directly or further down, and nothing else of ours; a C library (C*) only where it is
# listed directly (it is the implementation of that layer, not an API for the ones above).
BELOW = {
    # system libraries, the C checksum and the optimizers' vector loops
    "COpenBLAS": [], "CZstd": [], "CZlib": [], "CChecksum": [], "CKernels": [],
    # the contract between training and whatever sums across ranks (no dependencies)
    "DataParallel": [],
    "Tensors": ["COpenBLAS", "CKernels"],
    "NN": ["Tensors", "DataParallel", "CKernels"],
    "Datasets": ["Tensors", "CZlib"],
    "Telemetry": ["Tensors", "CZlib", "CChecksum"],
    "GAN": ["NN", "Datasets", "Telemetry", "CZlib"],
    # beside the model stack, not above it: flat float buffers, sockets, codecs
    "Collectives": ["DataParallel", "CZstd", "CChecksum", "CKernels"],
    "Cluster": ["GAN", "Collectives"],
    "TrainingCLI": ["GAN", "Telemetry", "Tensors"],
    # executables, on top
    "gan": ["TrainingCLI"],
    "gan-coordinator": ["TrainingCLI", "Cluster"],
    "gan-worker": ["TrainingCLI", "Cluster"],
}
# Ours are the folders under Sources/; any other import (Foundation, Glibc, Synchronization,
# Logging, Crypto, ArgumentParser, ...) is the toolchain's or a package's, and any layer may use it.
OURS = {m for m in os.listdir("Sources") if os.path.isdir(os.path.join("Sources", m))}

def closure(m, seen=None):
    seen = set() if seen is None else seen
    for d in BELOW[m]:
        if d not in seen:
            seen.add(d)
            closure(d, seen)
    return seen

def allowed_imports(m):
    direct = set(BELOW[m])
    return {d for d in closure(m) if d in direct or not is_c_library(d)}

def is_c_library(m):
    return m.startswith("C") and m in BELOW and not BELOW[m] and m[1:2].isupper()

IMPORT = re.compile(r"^\s*(?:@\w+\s+)*import\s+(?:(?:struct|class|enum|protocol|func|var|let|typealias)\s+)?([A-Za-z_]\w*)")
problems, checked = [], 0
for module in sorted(os.listdir("Sources")):
    folder = os.path.join("Sources", module)
    if not os.path.isdir(folder):
        continue
    if module not in BELOW:
        problems.append(f"Sources/{module}: a module scripts/check-layers.sh does not know; declare its layer there")
        continue
    allowed = allowed_imports(module)
    for root, _, files in os.walk(folder):
        for name in sorted(files):
            if not name.endswith(".swift"):
                continue
            path = os.path.join(root, name)
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    m = IMPORT.match(line)
                    if not m:
                        continue
                    checked += 1
                    dep = m.group(1)
                    if dep not in OURS or dep in allowed:
                        continue
                    if dep == module:
                        problems.append(f"{path}:{lineno}: {module} imports itself")
                    elif is_c_library(dep) and dep in closure(module):
                        problems.append(f"{path}:{lineno}: {module} imports the C library {dep}, which only the layers that list it may use")
                    else:
                        problems.append(f"{path}:{lineno}: {module} imports {dep}, which is not below it")
if problems:
    print("check-layers: FAILED, imports that do not point down:", file=sys.stderr)
    for p in problems:
        print("  " + p, file=sys.stderr)
    sys.exit(1)
print(f"check-layers: {checked} imports in {len(BELOW)} modules point down")
PY
