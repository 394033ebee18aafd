#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Static checks of deploy/: every manifest parses and has what xmesh needs.

  check_deploy.py DEPLOY_DIR

Prints one line per check; exits 1 on the first group of failures.
"""
import configparser
import json
import sys
from pathlib import Path

import yaml

failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)
    return cond


def containers(spec, init=False):
    return spec.get("initContainers" if init else "containers", []) or []


def mounts(c):
    return {m["mountPath"]: m for m in c.get("volumeMounts", []) or []}


def host_volumes(spec):
    return {v["name"]: v["hostPath"]["path"] for v in spec.get("volumes", []) if "hostPath" in v}


def common(doc, src):
    check(isinstance(doc, dict), "%s: document is a mapping" % src)
    for f in ("apiVersion", "kind"):
        check(f in doc, "%s: has %s" % (src, f))
    check(bool(doc.get("metadata", {}).get("name")), "%s: %s has metadata.name" % (src, doc.get("kind")))


def pod_spec_checks(ds, src, docs):
    name = ds["metadata"]["name"]
    tmpl = ds["spec"]["template"]
    spec = tmpl["spec"]
    sel = ds["spec"]["selector"]["matchLabels"]
    labels = tmpl["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in sel.items()), "%s: selector matches the pod labels" % name)
    check(spec.get("hostNetwork") is True, "%s: hostNetwork" % name)
    vols = {v["name"] for v in spec.get("volumes", [])}
    for c in containers(spec) + containers(spec, True):
        check(bool(c.get("image")), "%s/%s: has an image" % (name, c["name"]))
        for m in c.get("volumeMounts", []) or []:
            check(m["name"] in vols, "%s/%s: volume %s exists" % (name, c["name"], m["name"]))
    sa = spec.get("serviceAccountName")
    check(any(d["kind"] == "ServiceAccount" and d["metadata"]["name"] == sa for d in docs),
          "%s: service account %s is defined" % (name, sa))
    for v in spec.get("volumes", []):
        if "configMap" in v:
            cm = v["configMap"]["name"]
            check(any(d["kind"] == "ConfigMap" and d["metadata"]["name"] == cm for d in docs),
                  "%s: ConfigMap %s is defined" % (name, cm))
    return spec


def agent_checks(ds, docs):
    spec = pod_spec_checks(ds, "xmesh.yaml", docs)
    hv = host_volumes(spec)
    agent = next(c for c in containers(spec) if c["name"] == "agent")
    m = mounts(agent)

    def host_of(path):
        return hv.get(m[path]["name"]) if path in m else None

    check(host_of("/sys/fs/bpf") == "/sys/fs/bpf", "agent mounts the host's /sys/fs/bpf at /sys/fs/bpf")
    check(m.get("/sys/fs/bpf", {}).get("mountPropagation") in ("HostToContainer", "Bidirectional"),
          "bpffs mount sees the host's mounts")
    args = agent.get("command", []) + agent.get("args", [])
    cg = [a.split("=", 1)[1] for a in args if a.startswith("--cgroup=")]
    if not cg and "--cgroup" in args:
        cg = [args[args.index("--cgroup") + 1]]
    check(len(cg) == 1, "agent gets --cgroup explicitly")
    if cg:
        check(cg[0] in m and hv.get(m[cg[0]]["name"]) == "/sys/fs/cgroup",
              "--cgroup %s is the host's cgroup2 root mounted into the agent" % cg[0])
    check(any(a.startswith("--pin-root") for a in args), "agent gets --pin-root")
    check("--k8s" in args or any(a.startswith("--kubeconfig") for a in args),
          "agent takes services from the API server (--k8s)")
    env_from = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
                for e in agent.get("env", [])}
    check(any(a == "--node-name=$(NODE_NAME)" for a in args) and
          env_from.get("NODE_NAME") == "spec.nodeName", "agent --node-name is the pod's node")
    check(spec.get("automountServiceAccountToken") is not False,
          "agent pod mounts its service account token (for --k8s)")
    probe = agent.get("readinessProbe", {}).get("httpGet", {})
    check(probe.get("path") == "/readyz", "readiness is /readyz (true after the initial sync)")
    check(agent.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz",
          "liveness is /healthz")
    mport = [a.rsplit(":", 1)[1] for a in args if a.startswith("--metrics=")]
    check(bool(mport) and str(probe.get("port")) == mport[0], "probes use the --metrics port")
    cfg = [a.split("=", 1)[1] for a in args if a.startswith("--config=")]
    check(bool(cfg) and any(cfg[0].startswith(p + "/") for p in m), "agent --config is a mounted file")
    sc = agent.get("securityContext", {})
    caps = set(sc.get("capabilities", {}).get("add", []))
    check(sc.get("privileged") is True or {"BPF", "NET_ADMIN", "SYS_ADMIN", "PERFMON"} <= caps,
          "agent is privileged or has BPF, PERFMON, NET_ADMIN, SYS_ADMIN")
    pre = agent.get("lifecycle", {}).get("preStop")
    check(pre is not None, "agent has a preStop hook")
    cmd = " ".join((pre or {}).get("exec", {}).get("command", []))
    check("uninstall" not in cmd and "rm " not in cmd and "detach" not in cmd,
          "preStop does not tear the datapath down (%s)" % cmd)
    env = {e["name"]: e.get("value") for e in agent.get("env", [])}
    check(env.get("XMESH_CNI_STATE_DIR") in m and
          hv.get(m[env["XMESH_CNI_STATE_DIR"]]["name"]) == env["XMESH_CNI_STATE_DIR"],
          "agent reads the plugin's records from the host's state dir")

    inits = containers(spec, True)
    inst = [c for c in inits if "install-cni" in " ".join(c.get("command", []) + c.get("args", []))]
    check(len(inst) == 1, "an init container installs xmesh-cni")
    if inst:
        im = mounts(inst[0])
        paths = {hv.get(v["name"]) for v in im.values()}
        check({"/opt/cni/bin", "/etc/cni/net.d"} <= paths, "installer mounts /opt/cni/bin and /etc/cni/net.d")
    watch = [c for c in containers(spec) if "--watch" in c.get("command", []) + c.get("args", [])]
    check(len(watch) == 1, "a container keeps xmesh-cni chained (conflist add --watch)")

    cms = [d for d in docs if d["kind"] == "ConfigMap"]
    for cm in cms:
        for key, val in cm.get("data", {}).items():
            if key.endswith(".json"):
                try:
                    j = json.loads(val)
                    check(True, "ConfigMap %s/%s is JSON" % (cm["metadata"]["name"], key))
                except ValueError as e:
                    check(False, "ConfigMap %s/%s is JSON: %s" % (cm["metadata"]["name"], key, e))
                    continue
                if key == "cni-plugin.json":
                    check(j.get("type") == "xmesh-cni", "cni-plugin.json is an xmesh-cni entry")
                    state = j.get("stateDir", "/var/lib/cni/xmesh")
                    check(state == env.get("XMESH_CNI_STATE_DIR"),
                          "plugin stateDir and agent XMESH_CNI_STATE_DIR agree")
                    pin = [a.split("=", 1)[1] for a in args if a.startswith("--pin-root=")]
                    check(pin and j.get("pinRoot", "/sys/fs/bpf/xmesh") == pin[0],
                          "plugin pinRoot and agent --pin-root agree")
                if key == "config.json":
                    check(isinstance(j.get("services", []), list), "agent config has a services list")


# What the agent's roles grant: exactly this, nothing more (its config is a mounted file: the
# kubelet reads the ConfigMap, the agent never asks the API for it).
AGENT_RULES = {("", "services", "list"), ("", "services", "watch"),
               ("discovery.k8s.io", "endpointslices", "list"),
               ("discovery.k8s.io", "endpointslices", "watch"), ("", "nodes", "get")}


def rbac_checks(docs):
    roles = {(d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] in ("Role", "ClusterRole")}
    granted = set()
    for d in docs:
        if d["kind"] not in ("Role", "ClusterRole"):
            continue
        for r in d.get("rules", []):
            for g in r.get("apiGroups", []):
                for res in r.get("resources", []):
                    for v in r.get("verbs", []):
                        granted.add((g, res, v))
    check(granted == AGENT_RULES, "roles: list/watch services and endpointslices, get nodes, "
          "nothing more (%s)" % sorted(granted ^ AGENT_RULES))
    sas = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}
    binds = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    check(bool(binds), "RBAC: a binding exists")
    for b in binds:
        check((b["roleRef"]["kind"], b["roleRef"]["name"]) in roles,
              "RBAC: %s refers to a defined role" % b["metadata"]["name"])
        check(all(s["name"] in sas for s in b["subjects"] if s["kind"] == "ServiceAccount"),
              "RBAC: %s binds a defined service account" % b["metadata"]["name"])


def uninstall_checks(ds, docs):
    spec = pod_spec_checks(ds, "xmesh-uninstall.yaml", docs)
    cmds = " ".join(" ".join(c.get("command", []) + c.get("args", [])) for c in containers(spec, True))
    check("uninstall-node.sh" in cmds, "uninstall DaemonSet runs uninstall-node.sh")
    hv = set(host_volumes(spec).values())
    check({"/sys/fs/bpf", "/sys/fs/cgroup", "/etc/cni/net.d"} <= hv,
          "uninstall mounts bpffs, the cgroup root and the CNI config dir")


def systemd_checks(path):
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read(path)
    check(cp.has_section("Unit") and cp.has_section("Service") and cp.has_section("Install"),
          "systemd unit has [Unit], [Service], [Install]")
    start = cp.get("Service", "ExecStart", fallback="")
    check("xmesh-agent" in start and "--cgroup" in start, "ExecStart runs xmesh-agent with --cgroup")
    check("uninstall" not in cp.get("Service", "ExecStop", fallback="") and
          "uninstall" not in cp.get("Service", "ExecStopPost", fallback=""),
          "stopping the unit does not uninstall the datapath")
    check(cp.get("Install", "WantedBy", fallback="") != "", "unit has WantedBy")


def main():
    d = Path(sys.argv[1])
    k8s = d / "kubernetes"
    all_docs = []
    for f in sorted(k8s.glob("*.yaml")):
        with open(f) as fh:
            docs = [x for x in yaml.safe_load_all(fh) if x is not None]
        check(bool(docs), "%s parses as YAML" % f.name)
        for doc in docs:
            common(doc, f.name)
        all_docs.append((f.name, docs))
    main_docs = dict(all_docs).get("xmesh.yaml", [])
    ds = [x for x in main_docs if x["kind"] == "DaemonSet"]
    check(len(ds) == 1, "xmesh.yaml has one DaemonSet")
    if ds:
        agent_checks(ds[0], main_docs)
    rbac_checks(main_docs)
    un = [x for x in dict(all_docs).get("xmesh-uninstall.yaml", []) if x["kind"] == "DaemonSet"]
    check(len(un) == 1, "xmesh-uninstall.yaml has one DaemonSet")
    if un:
        uninstall_checks(un[0], main_docs)
    systemd_checks(d / "xmesh-agent.service")
    for f in sorted((d / "cni").glob("*")):
        try:
            json.load(open(f))
            check(True, "%s is JSON" % f.name)
        except ValueError as e:
            check(False, "%s is JSON: %s" % (f.name, e))
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
