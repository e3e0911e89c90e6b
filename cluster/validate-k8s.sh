#!/usr/bin/env bash
# Validates cluster/k8s/ against the real Kubernetes OpenAPI schemas with `kubernetes-validate`
# (PyPI; it ships the schemas of every Kubernetes release, so no API server or network is needed):
#
#   - every object of the core API in cluster/k8s/*.yaml, strictly (unknown fields refused);
#   - the pod templates of the Kubeflow PyTorchJob (a custom resource: its own schema is not in
#     Kubernetes', so each replica's template is validated as a core PodTemplate);
#   - a control: a copy of workers.yaml with one field of the wrong type must be refused, so a
#     validator that accepts everything cannot pass.
#
# Kustomization (kustomize's own kind) has no Kubernetes schema; check-manifests.py checks it.
#   bash cluster/validate-k8s.sh       exits 77 (skipped) where kubernetes-validate is not installed
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
command -v kubernetes-validate >/dev/null || { echo "validate-k8s: SKIPPED (kubernetes-validate is not installed: pip install kubernetes-validate)"; exit 77; }
version="${RINGGAN_K8S_VERSION:-1.30.0}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT

python3 - "$tmp" <<'PY'
import copy, sys, yaml
out = sys.argv[1]
for doc in yaml.safe_load_all(open("cluster/k8s/pytorchjob.yaml")):
    if doc and doc.get("kind") == "PyTorchJob":
        for rtype, rs in doc["spec"]["pytorchReplicaSpecs"].items():
            t = {"apiVersion": "v1", "kind": "PodTemplate",
                 "metadata": {"name": f"{doc['metadata']['name']}-{rtype.lower()}"}, "template": rs["template"]}
            yaml.safe_dump(t, open(f"{out}/pytorchjob-{rtype.lower()}-template.yaml", "w"))
docs = [d for d in yaml.safe_load_all(open("cluster/k8s/workers.yaml")) if d]
for d in docs:
    if d["kind"] == "StatefulSet":
        d["spec"]["replicas"] = "four"
yaml.safe_dump_all(docs, open(f"{out}/control-bad-replicas.yaml", "w"))
PY

files=()
for f in cluster/k8s/*.yaml; do
    grep -qE '^kind: (Kustomization|PyTorchJob)$' "$f" || files+=("$f")
done
rc=0
if kubernetes-validate --strict --quiet -k "$version" "${files[@]}" "$tmp"/pytorchjob-*-template.yaml; then
    echo "validate-k8s: ok: ${files[*]} and the PyTorchJob's pod templates against Kubernetes $version (strict)"
else
    echo "validate-k8s: FAIL: the manifests do not validate against Kubernetes $version (above)"; rc=1
fi
if kubernetes-validate --strict --quiet -k "$version" "$tmp/control-bad-replicas.yaml" >/dev/null 2>&1; then
    echo "validate-k8s: FAIL: the control (replicas: \"four\") was accepted: the validator checks nothing"; rc=1
else
    echo "validate-k8s: ok: the control (replicas: \"four\") is refused"
fi
exit $rc
