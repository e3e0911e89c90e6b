#!/usr/bin/env bash
# Layers only point down: reads every `import X` under Sources/ and fails when a module imports a
# project module that is not below it in Package.swift's graph (scripts/modules.py), or when
# docs/ARCHITECTURE.md's module table says otherwise than Package.swift, or when a library reads
# the environment (only the executables do). A new module is a target
# in Package.swift and a row in that table.
#
#   bash scripts/check-layers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import os, re, sys

# The graph is Package.swift's (scripts/modules.py reads it): each module with the modules it
# depends on directly. A module may import what is below it, directly or further down, and
# nothing else of ours; a C library (C*) only where it is listed directly (it is the
# implementation of that layer, not an API for the ones above).
sys.path.insert(0, "scripts")
import modules  # noqa: E402
GRAPH = modules.graph()
BELOW = {m: [d for d in v["deps"] if GRAPH[d]["kind"] != "product"] for m, v in GRAPH.items() if v["kind"] != "product"}
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
        problems.append(f"Sources/{module}: a folder that is no target of Package.swift")
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
# Only the executables read the environment (their shared front, TrainingCLI, included): a
# library takes settings and parameters (TrainingCLI/ProcessEnvironment.swift hands them over).
# The one exception is OpenBLAS's own OPENBLAS_CORETYPE, which BLASRuntime checks before it
# re-executes a process onto the right kernels.
READS_ENV = re.compile(r"\bgetenv\(|\bsetenv\(|processInfo\.environment")
ENV_EXCEPTIONS = {"Sources/Tensors/BLASRuntime.swift"}
for module in sorted(BELOW):
    if GRAPH[module]["kind"] != "library" or module == "TrainingCLI" or not os.path.isdir(os.path.join("Sources", module)):
        continue
    for root, _, files in os.walk(os.path.join("Sources", module)):
        for name in sorted(files):
            path = os.path.join(root, name)
            if path in ENV_EXCEPTIONS or not name.endswith((".swift", ".c", ".h")):
                continue
            for lineno, line in enumerate(open(path, encoding="utf-8"), 1):
                if READS_ENV.search(line) and not line.lstrip().startswith("///"):
                    problems.append(f"{path}:{lineno}: the library {module} reads the environment "
                                    "(only executables do: pass a setting, see ProcessEnvironment)")
# docs/ARCHITECTURE.md's module table says what each module depends on: Package.swift's list.
ROW = re.compile(r"^\| ((?:`[^`]+`(?:, )?)+) \| ([^|]*) \|")
for line in open("docs/ARCHITECTURE.md", encoding="utf-8"):
    m = ROW.match(line)
    if not m:
        continue
    names = re.findall(r"`([^`]+)`", m.group(1))
    if not all(n in BELOW for n in names):
        continue
    said = set() if m.group(2).strip() in ("-", "") else {d.strip() for d in m.group(2).split(",")}
    for n in names:
        if said != set(BELOW[n]):
            problems.append(f"docs/ARCHITECTURE.md: the row of {n} says it depends on {sorted(said)}; "
                            f"Package.swift says {sorted(BELOW[n])}")
if problems:
    print("check-layers: FAILED, imports that do not point down or libraries that read the environment:", file=sys.stderr)
    for p in problems:
        print("  " + p, file=sys.stderr)
    sys.exit(1)
print(f"check-layers: {checked} imports in {len(BELOW)} modules point down; no library reads the environment")
PY
