#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run a CNI conflist the way a container runtime does (libcni semantics).

  cni_chain.py --conflist F --cache DIR [--path P] [--annotations JSON] add|check|del CID=NETNS[,IFNAME] ...
  cni_chain.py --conflist F --cache DIR [--path P] gc [CID[,IFNAME] ...]

ADD runs the plugins in order, each one getting the previous plugin's result
as prevResult, and caches the final result (as libcni does under
/var/lib/cni/results). CHECK runs them in order with the cached result. DEL
runs them in reverse order with the cached result (none after a failed ADD)
and drops the cache. GC sends the valid attachments to every plugin that
supports CNI 1.1.0. Each plugin's stdin is its own config plus the list's
name and cniVersion, and the CNI_* environment is set for it. --annotations
are the pod's: as containerd does, they go in runtimeConfig under
"io.kubernetes.cri.pod-annotations" to the plugins whose "capabilities"
enable that key.

Prints one JSON line per attachment on stdout: {"id", "ok", "result"|"error"}.
Exit status 1 if any attachment failed.
"""
import argparse
import json
import os
import subprocess
import sys


def find_plugin(path, ptype):
    for d in path.split(":"):
        exe = os.path.join(d, ptype)
        if os.access(exe, os.X_OK):
            return exe
    raise RuntimeError("plugin %s not found in CNI_PATH %s" % (ptype, path))


POD_ANNOTATIONS = "io.kubernetes.cri.pod-annotations"
annotations = None


def invoke(path, plugin, version, name, cmd, env_extra, prev=None, extra=None):
    conf = dict(plugin)
    if annotations is not None and plugin.get("capabilities", {}).get(POD_ANNOTATIONS):
        conf["runtimeConfig"] = {POD_ANNOTATIONS: annotations}
    conf["name"] = name
    conf["cniVersion"] = version
    if prev is not None:
        conf["prevResult"] = prev
    if extra:
        conf.update(extra)
    env = dict(os.environ)
    env.update({"CNI_COMMAND": cmd, "CNI_PATH": path})
    env.update(env_extra)
    p = subprocess.run([find_plugin(path, plugin["type"])], input=json.dumps(conf).encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = p.stdout.decode().strip()
    if p.returncode != 0:
        try:
            err = json.loads(out)
        except ValueError:
            err = {"code": -1, "msg": "no error object (exit %d)" % p.returncode,
                   "details": out}
        err["plugin"] = plugin["type"]
        err["stderr"] = p.stderr.decode()[-400:]
        raise PluginError(err)
    return json.loads(out) if out else None


class PluginError(Exception):
    pass


def supports(path, plugin, version):
    p = subprocess.run([find_plugin(path, plugin["type"])], input=b"",
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, CNI_COMMAND="VERSION"))
    try:
        return version in json.loads(p.stdout)["supportedVersions"]
    except (ValueError, KeyError):
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conflist", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--path", default="/usr/lib/cni")
    ap.add_argument("--annotations", help="the pod's annotations, a JSON object")
    ap.add_argument("cmd", choices=["add", "check", "del", "gc"])
    ap.add_argument("targets", nargs="*")
    a = ap.parse_args()
    global annotations
    if a.annotations:
        annotations = json.loads(a.annotations)

    with open(a.conflist) as f:
        cl = json.load(f)
    name, version, plugins = cl["name"], cl["cniVersion"], cl["plugins"]
    os.makedirs(a.cache, exist_ok=True)
    failed = False

    if a.cmd == "gc":
        valid = []
        for t in a.targets:
            cid, _, ifname = t.partition(",")
            valid.append({"containerID": cid, "ifname": ifname or "eth0"})
        extra = {"cni.dev/valid-attachments": valid, "cni.dev/attachments": valid}
        for plugin in plugins:
            if not supports(a.path, plugin, "1.1.0"):
                continue
            try:
                invoke(a.path, plugin, "1.1.0", name, "GC", {}, extra=extra)
                print(json.dumps({"id": plugin["type"], "ok": True}))
            except PluginError as e:
                print(json.dumps({"id": plugin["type"], "ok": False, "error": e.args[0]}))
                failed = True
        return 1 if failed else 0

    for t in a.targets:
        cid, _, rest = t.partition("=")
        netns, _, ifname = rest.partition(",")
        ifname = ifname or "eth0"
        # As containerd sends them for a Kubernetes pod (the pod is named after the id here).
        args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=%s;" \
               "K8S_POD_INFRA_CONTAINER_ID=%s" % (cid[:63], cid)
        env = {"CNI_CONTAINERID": cid, "CNI_NETNS": netns, "CNI_IFNAME": ifname, "CNI_ARGS": args}
        cache = os.path.join(a.cache, "%s-%s-%s.json" % (name, cid, ifname))
        try:
            if a.cmd == "add":
                prev = None
                for plugin in plugins:
                    prev = invoke(a.path, plugin, version, name, "ADD", env, prev)
                with open(cache, "w") as f:
                    json.dump(prev, f)
                print(json.dumps({"id": cid, "ok": True, "result": prev}))
            elif a.cmd == "check":
                with open(cache) as f:
                    prev = json.load(f)
                for plugin in plugins:
                    invoke(a.path, plugin, version, name, "CHECK", env, prev)
                print(json.dumps({"id": cid, "ok": True}))
            else:
                prev = None
                if os.path.exists(cache):
                    with open(cache) as f:
                        prev = json.load(f)
                for plugin in reversed(plugins):
                    invoke(a.path, plugin, version, name, "DEL", env, prev)
                if os.path.exists(cache):
                    os.unlink(cache)
                print(json.dumps({"id": cid, "ok": True}))
        except PluginError as e:
            print(json.dumps({"id": cid, "ok": False, "error": e.args[0]}))
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
