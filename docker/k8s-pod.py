#!/usr/bin/env python3
"""Prints, as bash assignments, what the StatefulSet in a workers manifest gives its container:

    k8s_cmd=(command... args...)   the container's command and args, as the kubelet runs them
    k8s_env='NAME=VALUE...'        the literal env values (one per line; valueFrom entries left out:
                                   the Secret's token and the downward API's POD_IP are supplied by
                                   the caller, as the kubelet would)
    k8s_master=NAME                MASTER_ADDR, the coordinator Service's name

docker/test.sh runs the image with exactly these, one container per ordinal.
"""
import shlex
import sys

import yaml

for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc.get("kind") == "StatefulSet":
        c = doc["spec"]["template"]["spec"]["containers"][0]
        cmd = list(c.get("command", [])) + list(c.get("args", []))
        env = {e["name"]: str(e["value"]) for e in c.get("env", []) if "value" in e}
        print("k8s_cmd=(" + " ".join(shlex.quote(a) for a in cmd) + ")")
        print("k8s_env=" + shlex.quote("\n".join(f"{k}={v}" for k, v in env.items())))
        print("k8s_master=" + shlex.quote(env["MASTER_ADDR"]))
        break
else:
    sys.exit(f"{sys.argv[1]}: no StatefulSet")
