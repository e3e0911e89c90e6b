#!/usr/bin/env python3
"""Offline checks of the cluster manifests (no Kubernetes API server, no Docker engine needed).

    python3 cluster/check-manifests.py

- every YAML file under cluster/k8s/ and docker/docker-compose.yml parses (yaml.safe_load_all);
- the Kubernetes objects agree with each other: the kustomization lists files that exist; every
  Secret and claim a pod uses is defined; Service and StatefulSet selectors match their pods;
  the StatefulSet's headless Service exists; the workers' MASTER_ADDR is the coordinator's
  Service; the StatefulSet's replicas equal the coordinator's --workers; the PyTorchJob's
  containers are named `pytorch` and its master has the port named `pytorchjob-port`;
- every `sh -c` script in a container parses (`sh -n`);
- docker-compose.yml: --workers equals the number of gan-worker services, ranks are 0..N-1,
  and the coordinator and rank 0 share the runs volume at one path;
- the coordinator is restarted when it dies and resumes (issue 9): the compose service and the
  Job have a restart policy (`restart: on-failure...`; `backoffLimit` > 0) and `--resume auto`,
  and every gan-worker waits for it (`--rejoin-timeout` > 0).

Prints one line per problem and exits 1 if there is any.
"""
import glob
import os
import re
import subprocess
import sys

try:
    import yaml
except ImportError:
    sys.exit("check-manifests: PyYAML is missing (pip install pyyaml, or apt-get install python3-yaml)")

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
problems = []


def problem(msg):
    problems.append(msg)
    print("  FAIL  " + msg)


def load(path):
    try:
        with open(path) as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        problem(f"{os.path.relpath(path, root)}: not valid YAML: {e}")
        return []


def pod_specs(obj):
    """(where, pod spec, pod labels) of every pod template in a workload."""
    kind = obj.get("kind")
    name = obj.get("metadata", {}).get("name")
    if kind in ("Job", "StatefulSet", "Deployment"):
        t = obj["spec"]["template"]
        yield f"{kind}/{name}", t["spec"], t.get("metadata", {}).get("labels", {})
    elif kind == "Pod":
        yield f"Pod/{name}", obj["spec"], obj.get("metadata", {}).get("labels", {})
    elif kind == "PyTorchJob":
        for rtype, rs in obj["spec"]["pytorchReplicaSpecs"].items():
            t = rs["template"]
            yield f"PyTorchJob/{name}/{rtype}", t["spec"], t.get("metadata", {}).get("labels", {})


def flag(args, name):
    """The value of --name in an argument list (--name=V or --name V), else None."""
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def check_shell(where, container):
    cmd = container.get("command", [])
    if cmd[:2] in (["/bin/sh", "-c"], ["sh", "-c"], ["/bin/bash", "-c"], ["bash", "-c"]):
        script = (cmd[2:] + container.get("args", []))[0]
        r = subprocess.run([cmd[0].split("/")[-1], "-n", "-c", script], capture_output=True, text=True)
        if r.returncode != 0:
            problem(f"{where}: the container's shell script does not parse: {r.stderr.strip()}")


# ---- Kubernetes ----------------------------------------------------------------------------
k8s = os.path.join(root, "cluster", "k8s")
objs = []
for path in sorted(glob.glob(os.path.join(k8s, "*.yaml"))):
    for d in load(path):
        d["_file"] = os.path.basename(path)
        objs.append(d)

by_kind = {}
for o in objs:
    by_kind.setdefault(o.get("kind"), []).append(o)
names = lambda kind: {o["metadata"]["name"] for o in by_kind.get(kind, [])}

for k in by_kind.get("Kustomization", []):
    for r in k.get("resources", []):
        if not os.path.exists(os.path.join(k8s, r)):
            problem(f"kustomization.yaml lists {r}, which is not there")

secrets, claims, services = names("Secret"), names("PersistentVolumeClaim"), by_kind.get("Service", [])
coordinator_workers = None
for o in objs:
    for where, spec, labels in pod_specs(o):
        for c in spec.get("containers", []):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] not in secrets:
                    problem(f"{where}: uses Secret {ref['name']}, which no manifest defines")
            check_shell(where, c)
            if o["kind"] == "Job" and c.get("command", [None])[0] == "gan-coordinator":
                coordinator_workers = flag(c.get("args", []), "--workers")
                if flag(c.get("args", []), "--resume") != "auto":
                    problem(f"{where}: the coordinator does not run with --resume=auto (a restarted pod would start the run over)")
                if not o["spec"].get("backoffLimit"):
                    problem(f"{where}: backoffLimit {o['spec'].get('backoffLimit')}: a coordinator that dies is not restarted")
                svc = [s for s in services if s["spec"].get("selector")
                       and all(labels.get(k) == v for k, v in s["spec"]["selector"].items())]
                if not svc:
                    problem(f"{where}: no Service selects the coordinator's pod")
        for v in spec.get("volumes", []):
            claim = v.get("persistentVolumeClaim", {}).get("claimName")
            if claim and claim not in claims:
                problem(f"{where}: uses claim {claim}, which no manifest defines")

for s in by_kind.get("StatefulSet", []):
    where = f"StatefulSet/{s['metadata']['name']}"
    labels = s["spec"]["template"]["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in s["spec"]["selector"]["matchLabels"].items()):
        problem(f"{where}: selector does not match the pod labels")
    headless = [x for x in services if x["metadata"]["name"] == s["spec"].get("serviceName")]
    if not headless or headless[0]["spec"].get("clusterIP") != "None":
        problem(f"{where}: serviceName {s['spec'].get('serviceName')} is not a headless Service here")
    env = {e["name"]: e.get("value") for e in s["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    coord_svcs = {x["metadata"]["name"] for x in services if x["spec"].get("clusterIP") != "None"}
    if env.get("MASTER_ADDR") not in coord_svcs:
        problem(f"{where}: MASTER_ADDR {env.get('MASTER_ADDR')} is not the coordinator's Service")
    if coordinator_workers is not None and str(s["spec"]["replicas"]) != coordinator_workers:
        problem(f"{where}: replicas {s['spec']['replicas']} but the coordinator has --workers {coordinator_workers}")
    script = " ".join(s["spec"]["template"]["spec"]["containers"][0].get("args", []))
    if "${HOSTNAME##*-}" not in script:
        problem(f"{where}: the rank is not derived from the pod name (${{HOSTNAME##*-}})")

for j in by_kind.get("PyTorchJob", []):
    specs = j["spec"]["pytorchReplicaSpecs"]
    for rtype, rs in specs.items():
        for c in rs["template"]["spec"]["containers"]:
            if c["name"] != "pytorch":
                problem(f"PyTorchJob/{rtype}: the container must be named 'pytorch', not {c['name']}")
    ports = [p.get("name") for c in specs["Master"]["template"]["spec"]["containers"] for p in c.get("ports", [])]
    if "pytorchjob-port" not in ports:
        problem("PyTorchJob/Master: no container port named pytorchjob-port (the operator's MASTER_PORT)")
    worker_script = " ".join(specs["Worker"]["template"]["spec"]["containers"][0].get("args", []))
    if "$((RANK - 1))" not in worker_script:
        problem("PyTorchJob/Worker: gan-worker must run with --rank $((RANK - 1)) (PyTorchJob counts the master)")

# ---- docker-compose ------------------------------------------------------------------------
compose_path = os.path.join(root, "docker", "docker-compose.yml")
for compose in load(compose_path)[:1]:
    svcs = compose.get("services", {})
    coord = [s for s in svcs.values() if "gan-coordinator" in (s.get("entrypoint") or [])]
    workers = {n: s for n, s in svcs.items() if "gan-worker" in (s.get("entrypoint") or [])}
    if len(coord) != 1:
        problem("docker-compose.yml: expected one gan-coordinator service")
    else:
        n = flag(coord[0]["entrypoint"] + (coord[0].get("command") or []), "--workers")
        if n != str(len(workers)):
            problem(f"docker-compose.yml: --workers {n} but {len(workers)} gan-worker services")
        ranks = sorted(int(w["environment"]["RANK"]) for w in workers.values())
        if ranks != list(range(len(workers))):
            problem(f"docker-compose.yml: worker ranks are {ranks}, not 0..{len(workers) - 1}")
        runs_dir = flag(coord[0]["entrypoint"] + (coord[0].get("command") or []), "--runs-dir")
        rank0 = [w for w in workers.values() if str(w["environment"]["RANK"]) == "0"]
        mounts = lambda s: {v.split(":")[1]: v.split(":")[0] for v in s.get("volumes", []) if ":" in v}
        if rank0 and (runs_dir not in mounts(coord[0]) or mounts(coord[0]).get(runs_dir) != mounts(rank0[0]).get(runs_dir)):
            problem(f"docker-compose.yml: the coordinator and rank 0 do not share a volume at {runs_dir}")

        if flag(coord[0]["entrypoint"] + (coord[0].get("command") or []), "--resume") != "auto":
            problem("docker-compose.yml: the coordinator does not run with --resume=auto (a restarted one would start the run over)")
        for svc, s in [("coordinator", coord[0])] + sorted(workers.items()):
            if not str(s.get("restart", "no")).startswith(("on-failure", "always", "unless-stopped")):
                problem(f"docker-compose.yml: {svc} has restart: {s.get('restart', 'no')!r}; it is not restarted when it dies")
        for svc, s in sorted(workers.items()):
            r = flag(s.get("command") or [], "--rejoin-timeout")
            if r is not None and float(r) <= 0:
                problem(f"docker-compose.yml: {svc} has --rejoin-timeout {r}: it would not wait for a restarted coordinator")

checked = len(glob.glob(os.path.join(k8s, "*.yaml"))) + 1
if problems:
    print(f"check-manifests: {len(problems)} problem(s) in {checked} files")
    sys.exit(1)
print(f"check-manifests: {checked} files, {len(objs)} Kubernetes objects: ok")
