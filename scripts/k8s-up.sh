#!/bin/bash
# SPDX-License-Identifier: MIT
# Start a one-machine Kubernetes test cluster in a sandbox (see
# docs/k8s-test-cluster.md): etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, containerd + runc and a kubelet, no kube-proxy; CNI chain
# bridge + host-local + portmap + xmesh-cni. Builds the binaries on first use.
#
#   scripts/k8s-up.sh [ID]          (ID: 1-6 of [0-9a-z]; default random)
#
# Writes $XM_K8S_DIR/env (shell, for tests to source) and prints its path as
# the last line. On any failure it removes everything it made (k8s-down.sh)
# and shows the failing component's log. XM_K8S_KEEP_ON_FAILURE=1 keeps it;
# XM_K8S_CNI_CHAIN=0 leaves xmesh-cni out of the chain (the DaemonSet adds it).
set -euo pipefail

. "$(dirname "$0")/k8s-lib.sh"
ID=${1:-${XM_K8S_ID:-$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')}}
[[ $ID =~ ^[0-9a-z]{1,6}$ ]] || { echo "k8s-up: id '$ID': use 1-6 of [0-9a-z]" >&2; exit 2; }
xm_k8s_names "$ID"
D=$XM_K8S_DIR
N=$XM_K8S_NAME
TOP=$XM_K8S_TOP
KBIN=$XM_K8S_BIN
# Dual-stack: every range in both families (IPv4 first: the primary family,
# so a Service without ipFamilyPolicy gets an IPv4 ClusterIP). The IPv6 ones
# are unique-local and exist only inside the cluster's netns.
NODE_IP=10.255.0.1          # the node's addresses, on a link inside the netns
NODE_IP6=fd00:10:255::1
POD_CIDR=10.244.0.0/24      # host-local ranges of the CNI bridge: the node's podCIDRs,
POD_CIDR6=fd00:10:244::/64  # the first ones the controller-manager allocates from
CLUSTER_CIDRS=10.244.0.0/16,fd00:10:244::/56
SERVICE_CIDR=10.96.0.0/16
SERVICE_CIDR6=fd00:10:96::/112
PIN=/sys/fs/bpf/$N          # where the test's xmesh agent pins, and xmesh-cni looks
T0=$(date +%s%N)

say() { printf 'k8s-up: [%6.1fs] %s\n' "$(( ($(date +%s%N) - T0) / 1000000 ))e-3" "$*"; }
die() { echo "k8s-up: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (namespaces, cgroups, containerd)"
for c in containerd containerd-shim-runc-v2 runc ctr nsenter unshare openssl curl; do
	command -v "$c" >/dev/null || die "$c not found: run scripts/install-deps.sh"
done
CNI_SRC=/usr/lib/cni
for p in bridge host-local portmap loopback; do
	[ -x "$CNI_SRC/$p" ] || die "$CNI_SRC/$p missing: install containernetworking-plugins"
done
[ -x "$TOP/build/bin/xmesh-cni" ] || die "build/bin/xmesh-cni missing: run make first"
[ -n "$XM_K8S_CG2_MOUNT" ] || die "no cgroup2 mount in /proc/mounts"
[ ! -e "$D" ] && [ ! -e "/run/netns/$N" ] || die "cluster $ID exists: scripts/k8s-down.sh $ID first"

"$TOP/scripts/k8s-build.sh"

step=start
ok=0
on_exit() {
	local rc=$?
	[ "$ok" = 1 ] && return
	echo "k8s-up: FAILED at step '$step' (status $rc) after $(( ($(date +%s%N) - T0) / 1000000000 ))s" >&2
	for l in "$D"/log/*.log; do
		[ -s "$l" ] || continue
		echo "---- last lines of $l" >&2
		tail -n 15 "$l" >&2
	done
	if [ "${XM_K8S_KEEP_ON_FAILURE:-0}" = 1 ]; then
		echo "k8s-up: kept for inspection; remove with scripts/k8s-down.sh $ID" >&2
	else
		"$TOP/scripts/k8s-down.sh" "$ID" >&2 || true
	fi
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# wait_for WHAT SECONDS CMD...: poll CMD every 0.5 s.
wait_for() {
	local what=$1 limit=$2 end
	shift 2
	end=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || die "$what not ready after ${limit}s"
		for p in "$D"/run/*.pid; do
			kill -0 "$(cat "$p")" 2>/dev/null ||
				die "$(basename "$p" .pid) exited while waiting for $what (log: $D/log/$(basename "$p" .pid).log)"
		done
		sleep 0.5
	done
}

# in_ns CMD...: run CMD in the cluster's network namespace.
in_ns() { nsenter --net="/run/netns/$N" -- "$@"; }

# start NAME CMD...: start a component (xm_k8s_start) and say so.
start() {
	xm_k8s_start "$@"
	say "started $1 (pid $(cat "$D/run/$1.pid"))"
}

step=dirs
mkdir -p "$D"/{run,log,pki,etc,bin,ns,etcd,kubelet,cni/bin,cni/net.d,cni/ipam,cni/xmesh} \
	"$D"/containerd/{root,state,runc,opt} "$D"/host/{run,varlib,varlog}
chmod 700 "$D/etcd" "$D/pki"

step=netns
ip netns add "$N"
ip -n "$N" link set lo up
# The node's own address sits on a veth whose peer stays in the netns too
# (this kernel has no dummy links); nothing reaches the machine's interfaces.
ip -n "$N" link add xm-node type veth peer name xm-node-peer
ip -n "$N" addr add "$NODE_IP/24" dev xm-node
ip -n "$N" addr add "$NODE_IP6/64" dev xm-node nodad
ip -n "$N" link set xm-node-peer up
ip -n "$N" link set xm-node up
# Components look for a default route to pick their address; the ClusterIP
# range must not be routed anywhere (only xmesh's connect() rewrite reaches it).
ip -n "$N" route add default dev xm-node
ip -n "$N" -6 route add default dev xm-node
say "netns $N, node $NODE_IP and $NODE_IP6"

step=cgroups
for h in $(xm_k8s_hierarchies); do
	for sub in "" /system; do
		mkdir -p "$h$XM_K8S_CGROUP$sub"
		# A new v1 cpuset is empty; it needs cpus and mems before it takes tasks.
		if [ -f "$h$XM_K8S_CGROUP$sub/cpuset.cpus" ]; then
			cat "$(dirname "$h$XM_K8S_CGROUP$sub")/cpuset.cpus" >"$h$XM_K8S_CGROUP$sub/cpuset.cpus"
			cat "$(dirname "$h$XM_K8S_CGROUP$sub")/cpuset.mems" >"$h$XM_K8S_CGROUP$sub/cpuset.mems"
		fi
	done
done
say "cgroup $XM_K8S_CGROUP in $(xm_k8s_hierarchies | wc -l) hierarchies"

step=mountns
# The components' mounts (container root filesystems, pod netns, volumes)
# live in a mount namespace of their own, gone when the cluster is. Paths
# they write outside their configured dirs land in $D/host: /run (shim
# sockets, xtables lock), /var/lib (the CNI result cache), /var/log (pod logs).
# The kubelet sets kernel tunables it expects (vm.overcommit_memory=1,
# kernel.panic_on_oops=1, ...) when they differ: on a shared machine it must
# not, so it reads the values it expects from files of ours.
tunables="vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1
kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000"
for t in $tunables; do
	echo "${t#*=}" >"$D/etc/sysctl.$(echo "${t%%=*}" | tr / .)"
done
touch "$XM_K8S_MNTNS"
unshare --mount="$XM_K8S_MNTNS" --propagation private /bin/sh -ec '
	D=$1; shift
	mount --bind "$D/host/run" /run
	mount --bind "$D/host/varlib" /var/lib
	mount --bind "$D/host/varlog" /var/log
	for t in "$@"; do
		p=${t%%=*}
		mount --bind "$D/etc/sysctl.$(echo "$p" | tr / .)" "/proc/sys/$p"
	done
	# Shared inside this namespace only (it has no peer outside), as on a
	# systemd host: the kubelet propagates volume mounts, and HostToContainer
	# volumes (the DaemonSet'"'"'s /sys/fs/bpf) need a shared source.
	mount --make-rshared /' sh "$D" $tunables
say "mount namespace $XM_K8S_MNTNS"

step=certs
cd "$D/pki"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
# cert NAME SUBJECT EXTENSIONS: a leaf certificate signed by the cluster CA.
cert() {
	key "$1"
	openssl req -new -key "$1.key" -subj "$2" 2>/dev/null |
		openssl x509 -req -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
			-days 30 -extfile <(printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n%s\n' "$3") \
			-out "$1.crt" 2>/dev/null
}
key ca
openssl req -x509 -new -key ca.key -subj "/CN=$N-ca" -days 30 -out ca.crt \
	-addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' 2>/dev/null
cert apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$NODE_IP,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert admin "/O=system:masters/CN=xm-admin" "extendedKeyUsage=clientAuth"
cert kubelet "/O=system:nodes/CN=system:node:$N" "extendedKeyUsage=clientAuth"
cert kubelet-serving "/CN=$N" "extendedKeyUsage=serverAuth
subjectAltName=IP:$NODE_IP,DNS:$N"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
key sa
openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
cd - >/dev/null
say "certificates (CA, apiserver, admin, kubelet, service-account keys)"

step=kubeconfigs
# kubeconfig FILE USER-CERT-NAME [inline]: JSON form (JSON is YAML), so C
# code reads it with jansson. inline = certificates as *-data (base64).
kubeconfig() {
	local ca=\"certificate-authority\":\"$D/pki/ca.crt\"
	local user=\"client-certificate\":\"$D/pki/$2.crt\",\"client-key\":\"$D/pki/$2.key\"
	if [ "${3:-}" = inline ]; then
		ca=\"certificate-authority-data\":\"$(base64 -w0 <"$D/pki/ca.crt")\"
		user=\"client-certificate-data\":\"$(base64 -w0 <"$D/pki/$2.crt")\",\"client-key-data\":\"$(base64 -w0 <"$D/pki/$2.key")\"
	fi
	cat >"$1" <<EOF
{"apiVersion": "v1", "kind": "Config",
 "clusters": [{"name": "$N", "cluster": {"server": "https://$NODE_IP:6443", $ca}}],
 "users": [{"name": "$2", "user": {$user}}],
 "contexts": [{"name": "$N", "context": {"cluster": "$N", "user": "$2"}}],
 "current-context": "$N"}
EOF
}
kubeconfig "$D/admin.kubeconfig" admin
kubeconfig "$D/kubelet.kubeconfig" kubelet
kubeconfig "$D/agent.kubeconfig" admin inline
cat >"$D/bin/kubectl" <<EOF
#!/bin/sh
# kubectl for cluster $N (its API server is reachable in the cluster's netns only)
exec nsenter --net=/run/netns/$N -- "$KBIN/kubectl" --kubeconfig "$D/admin.kubeconfig" "\$@"
EOF
chmod +x "$D/bin/kubectl"
KUBECTL=$D/bin/kubectl

step=etcd
start etcd "$KBIN/etcd" --name "$N" --data-dir "$D/etcd" \
	--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
	--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
	--initial-cluster "$N=http://127.0.0.1:2380" \
	--unsafe-no-fsync --log-level warn
wait_for etcd 60 in_ns curl -fsS http://127.0.0.1:2379/health
say "etcd ready"

step=kube-apiserver
apiserver_args=(--etcd-servers http://127.0.0.1:2379 \
	--bind-address 0.0.0.0 --secure-port 6443 --advertise-address "$NODE_IP" \
	--tls-cert-file "$D/pki/apiserver.crt" --tls-private-key-file "$D/pki/apiserver.key" \
	--client-ca-file "$D/pki/ca.crt" --cert-dir "$D/pki/apiserver-generated" \
	--service-account-issuer "https://kubernetes.default.svc.cluster.local" \
	--service-account-key-file "$D/pki/sa.pub" --service-account-signing-key-file "$D/pki/sa.key" \
	--service-cluster-ip-range "$SERVICE_CIDR,$SERVICE_CIDR6" --authorization-mode Node,RBAC \
	--kubelet-client-certificate "$D/pki/apiserver-kubelet-client.crt" \
	--kubelet-client-key "$D/pki/apiserver-kubelet-client.key" \
	--kubelet-preferred-address-types InternalIP --allow-privileged \
	--profiling=false --v 1)
start kube-apiserver "$KBIN/kube-apiserver" "${apiserver_args[@]}"
# Seen once on the loaded shared machine: a post-start hook gave up within
# seconds and the server exited. A second start then succeeds; a second
# failure is reported as such.
end=$((SECONDS + 120))
until "$KUBECTL" get --raw /readyz >/dev/null 2>&1; do
	if ! kill -0 "$(cat "$D/run/kube-apiserver.pid")" 2>/dev/null; then
		[ -z "${apiserver_retried:-}" ] || die "kube-apiserver exited twice while starting (log: $D/log/kube-apiserver.log)"
		apiserver_retried=1
		say "kube-apiserver exited while starting: $(grep '^F' "$D/log/kube-apiserver.log" | head -n 1 | cut -c1-200); starting it again"
		start kube-apiserver "$KBIN/kube-apiserver" "${apiserver_args[@]}"
	fi
	[ $SECONDS -lt $end ] || die "kube-apiserver not ready after 120s"
	sleep 0.5
done
say "kube-apiserver ready (https://$NODE_IP:6443)"

step=controllers
start kube-controller-manager "$KBIN/kube-controller-manager" \
	--kubeconfig "$D/admin.kubeconfig" --authentication-kubeconfig "$D/admin.kubeconfig" \
	--authorization-kubeconfig "$D/admin.kubeconfig" --leader-elect=false \
	--bind-address 127.0.0.1 --service-account-private-key-file "$D/pki/sa.key" \
	--root-ca-file "$D/pki/ca.crt" --use-service-account-credentials \
	--cluster-signing-cert-file "$D/pki/ca.crt" --cluster-signing-key-file "$D/pki/ca.key" \
	--service-cluster-ip-range "$SERVICE_CIDR,$SERVICE_CIDR6" \
	--allocate-node-cidrs --cluster-cidr "$CLUSTER_CIDRS" \
	--node-cidr-mask-size-ipv4 24 --node-cidr-mask-size-ipv6 64 \
	--controllers '*' --profiling=false --v 1
start kube-scheduler "$KBIN/kube-scheduler" --kubeconfig "$D/admin.kubeconfig" \
	--authentication-kubeconfig "$D/admin.kubeconfig" --authorization-kubeconfig "$D/admin.kubeconfig" \
	--leader-elect=false --bind-address 127.0.0.1 --profiling=false --v 1
wait_for kube-controller-manager 60 in_ns curl -fsSk https://127.0.0.1:10257/healthz
wait_for kube-scheduler 60 in_ns curl -fsSk https://127.0.0.1:10259/healthz
say "kube-controller-manager and kube-scheduler ready"

step=containerd
CTRD_SOCK=$D/run/containerd.sock
cat >"$D/etc/containerd.toml" <<EOF
# containerd for test cluster $N: own socket, root, state; CRI with our CNI.
version = 2
root = "$D/containerd/root"
state = "$D/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$CTRD_SOCK"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.runtime.v1.linux"]
  runtime_root = "$D/containerd/runc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$D/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "xm.local/pause:1"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  tolerate_missing_hugetlb_controller = true
  disable_hugetlb_controller = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$D/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$D/cni/bin"
    conf_dir = "$D/cni/net.d"
    max_conf_num = 1
EOF
start containerd containerd --config "$D/etc/containerd.toml" --log-level warn
wait_for containerd 60 ctr --address "$CTRD_SOCK" version
for img in $("$TOP/scripts/k8s-images.sh" "$TOP/build/k8s/images" | awk '{print $2}'); do
	ctr --address "$CTRD_SOCK" -n k8s.io images import "$img" >/dev/null
done
say "containerd ready; images: $(ctr --address "$CTRD_SOCK" -n k8s.io images ls -q | grep xm.local | tr '\n' ' ')"

step=cni
for p in bridge host-local portmap loopback; do cp "$CNI_SRC/$p" "$D/cni/bin/"; done
cat >"$D/cni/net.d/10-$N.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$N",
  "plugins": [
    {
      "type": "bridge", "bridge": "xm-cni-$ID", "isGateway": true, "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$D/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR" }], [{ "subnet": "$POD_CIDR6" }]],
        "routes": [{ "dst": "0.0.0.0/0" }, { "dst": "::/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
cat >"$D/cni/xmesh-cni-plugin.json" <<EOF
{ "type": "xmesh-cni", "pinRoot": "$PIN", "stateDir": "$D/cni/xmesh",
  "logFile": "$D/log/xmesh-cni.log", "logLevel": "debug",
  "capabilities": { "io.kubernetes.cri.pod-annotations": true } }
EOF
if [ "${XM_K8S_CNI_CHAIN:-1}" = 1 ]; then
	# The DaemonSet's install step, pointed at this cluster's dirs.
	HOST_ROOT='' CNI_BIN_DIR="$D/cni/bin" CNI_CONF_DIR="$D/cni/net.d" \
		XMESH_CNI_PLUGIN="$D/cni/xmesh-cni-plugin.json" XMESH_BIN_DIR="$TOP/build/bin" \
		sh "$TOP/deploy/install-cni.sh" 2>>"$D/log/install-cni.log"
	grep -q xmesh-cni "$D/cni/net.d/10-$N.conflist" ||
		die "install-cni.sh did not chain xmesh-cni (log: $D/log/install-cni.log)"
	say "CNI chain bridge + host-local + portmap + xmesh-cni in $D/cni"
else
	say "CNI chain bridge + host-local + portmap in $D/cni (XM_K8S_CNI_CHAIN=0: xmesh-cni not chained)"
fi

step=kubelet
printf '# no DNS in the xmesh test cluster\n' >"$D/etc/resolv.conf"
cat >"$D/etc/kubelet.json" <<EOF
{
  "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
  "address": "$NODE_IP", "port": 10250, "readOnlyPort": 0,
  "healthzBindAddress": "127.0.0.1", "healthzPort": 10248,
  "tlsCertFile": "$D/pki/kubelet-serving.crt", "tlsPrivateKeyFile": "$D/pki/kubelet-serving.key",
  "authentication": { "anonymous": { "enabled": false }, "webhook": { "enabled": false },
                      "x509": { "clientCAFile": "$D/pki/ca.crt" } },
  "authorization": { "mode": "AlwaysAllow" },
  "cgroupDriver": "cgroupfs", "cgroupRoot": "$XM_K8S_CGROUP", "cgroupsPerQOS": true,
  "failCgroupV1": false, "failSwapOn": false,
  "containerRuntimeEndpoint": "unix://$CTRD_SOCK",
  "resolvConf": "$D/etc/resolv.conf",
  "volumePluginDir": "$D/kubelet/volume-plugins",
  "evictionHard": { "memory.available": "50Mi", "nodefs.available": "1%",
                    "imagefs.available": "1%", "nodefs.inodesFree": "1%" },
  "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
  "makeIPTablesUtilChains": false, "protectKernelDefaults": false,
  "serializeImagePulls": false, "maxPods": 60, "containerLogMaxSize": "1Mi"
}
EOF
start kubelet "$KBIN/kubelet" --config "$D/etc/kubelet.json" --kubeconfig "$D/kubelet.kubeconfig" \
	--root-dir "$D/kubelet" --hostname-override "$N" --node-ip "$NODE_IP,$NODE_IP6" --v 1
node_ready() {
	[ "$("$KUBECTL" get node "$N" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
wait_for "node $N Ready" 180 node_ready
# host-local hands out the ranges written above: they must be what the
# controller-manager allocates to the node (soon after it registers), in both families.
pod_cidrs() { "$KUBECTL" get node "$N" -o 'jsonpath={.spec.podCIDRs[*]}'; }
has_pod_cidrs() { [ -n "$(pod_cidrs)" ]; }
wait_for "node $N podCIDRs" 60 has_pod_cidrs
[ "$(pod_cidrs)" = "$POD_CIDR $POD_CIDR6" ] ||
	die "node $N podCIDRs are '$(pod_cidrs)', the CNI ranges $POD_CIDR $POD_CIDR6"
wait_for "service account default/default" 60 "$KUBECTL" get serviceaccount default
say "node $N Ready"

step=env
cat >"$D/env" <<EOF
# Test cluster $N (scripts/k8s-up.sh); source it. Remove: scripts/k8s-down.sh $ID
XM_K8S_ID=$ID
XM_K8S_NAME=$N
XM_K8S_DIR=$D
XM_K8S_NETNS=$N
XM_K8S_MNTNS=$XM_K8S_MNTNS
XM_K8S_NODE_NAME=$N
XM_K8S_NODE_IP=$NODE_IP
XM_K8S_NODE_IP6=$NODE_IP6
XM_K8S_API=$NODE_IP:6443
XM_K8S_POD_CIDR=$POD_CIDR
XM_K8S_POD_CIDR6=$POD_CIDR6
XM_K8S_SERVICE_CIDR=$SERVICE_CIDR
XM_K8S_SERVICE_CIDR6=$SERVICE_CIDR6
XM_K8S_CGROUP=$XM_K8S_CG2_MOUNT$XM_K8S_CGROUP
XM_K8S_PIN=$PIN
XM_K8S_CONTAINERD_SOCK=$CTRD_SOCK
XM_K8S_AGENT_KUBECONFIG=$D/agent.kubeconfig
XM_K8S_KUBECTL=$D/bin/kubectl
KUBECONFIG=$D/admin.kubeconfig
XM_K8S_IN_NETNS="nsenter --net=/run/netns/$N --"
XM_K8S_ON_NODE="nsenter --mount=$XM_K8S_MNTNS --net=/run/netns/$N --"
XM_K8S_CNI_STATE_DIR=$D/cni/xmesh
EOF
ok=1
say "cluster $N up; env: $D/env"
echo "$D/env"
