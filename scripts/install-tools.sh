#!/usr/bin/env bash
# Installs, at pinned versions, what meshd's lab and tests need on a machine
# that has only Go and gcc. Idempotent: what is already there at the right
# version is left alone, so a second run takes seconds.
set -euo pipefail

INFLUXDB_VERSION=v1.8.10
GOBGP_VERSION=v4.8.0
GNMI_CLI_VERSION=v0.14.1
GOBIN=${GOBIN:-$(go env GOPATH)/bin}
export GOBIN
mkdir -p "$GOBIN"
stamp_dir=${XDG_CACHE_HOME:-$HOME/.cache}/meshd-tools
mkdir -p "$stamp_dir"

log() { printf '[install-tools] %s\n' "$*"; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages: FRR (its package ships the BMP module, bgpd -M bmp),
# iproute2 (namespaces, veth, tc netem), tcpdump and tshark for captures,
# e2fsprogs and mount for the spool tests' ext4 disk that turns read-only.
# etcd-server is the cluster mode's coordination engine (issue 18), real in
# its tests. chromium is the headless browser the status page is tested in;
# stayrtr the RPKI cache the RTR client is tested against.
debs=(frr iproute2 ethtool tcpdump tshark procps psmisc e2fsprogs mount etcd-server chromium stayrtr)
missing=()
for p in "${debs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "apt-get install ${missing[*]}"
	as_root apt-get update -qq
	# tshark asks whether non-root users may capture; answer for it.
	echo "wireshark-common wireshark-common/install-setuid boolean false" | as_root debconf-set-selections
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# The frr service is not wanted: the lab and tests run their own bgpd.
	as_root sh -c 'command -v systemctl >/dev/null && systemctl disable --now frr >/dev/null 2>&1 || true'
	# Nor etcd's: the tests start their own on loopback ports. Nor
	# stayrtr's, which would fetch VRPs from the Internet.
	as_root sh -c 'command -v systemctl >/dev/null && systemctl disable --now etcd >/dev/null 2>&1 || true'
	as_root sh -c 'command -v systemctl >/dev/null && systemctl disable --now stayrtr >/dev/null 2>&1 || true'
else
	log "Debian packages present: ${debs[*]}"
fi

# BIRD 2, the lab's third BGP speaker, pinned to Debian 12's version: its
# text output (birdc show protocols all) is what `meshd-lab verify` parses.
BIRD2_VERSION=2.0.12-7
if [ "$(dpkg-query -W -f='${Version}' bird2 2>/dev/null)" != "$BIRD2_VERSION" ]; then
	log "apt-get install bird2=$BIRD2_VERSION"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "bird2=$BIRD2_VERSION" >/dev/null
	# Nor is the bird service: the lab runs its own bird per router.
	as_root sh -c 'command -v systemctl >/dev/null && systemctl disable --now bird >/dev/null 2>&1 || true'
else
	log "bird2 $BIRD2_VERSION present"
fi

go_tool() { # name version-stamp package@version...
	local name=$1 stamp=$2
	shift 2
	if [ -x "$GOBIN/$name" ] && [ "$(cat "$stamp_dir/$name" 2>/dev/null)" = "$stamp" ]; then
		log "$name $stamp present"
		return
	fi
	log "go install $* (first time only)"
	go install "$@"
	echo "$stamp" >"$stamp_dir/$name"
}

go_tool gobgpd "$GOBGP_VERSION" "github.com/osrg/gobgp/v4/cmd/gobgpd@$GOBGP_VERSION" "github.com/osrg/gobgp/v4/cmd/gobgp@$GOBGP_VERSION"
# influxd 1.8.10 speaks the v2 write API that influxdb-client-go/v2 uses;
# building it takes about two minutes the first time.
go_tool influxd "$INFLUXDB_VERSION" "github.com/influxdata/influxdb/cmd/influxd@$INFLUXDB_VERSION"
# The gNMI client the gNMI target's integration tests hold meshd to. gnmic
# cannot be built here: the proxy serves only its v0.37.0, whose go.mod has
# replace directives (go install refuses them) and which needs
# inet.af/netaddr at a version the proxy does not serve. openconfig/gnmi's
# own CLI is the reference client instead.
go_tool gnmi_cli "$GNMI_CLI_VERSION" "github.com/openconfig/gnmi/cmd/gnmi_cli@$GNMI_CLI_VERSION"

for b in influxd gobgpd gobgp gnmi_cli; do
	[ -x "$GOBIN/$b" ] || { echo "install-tools: $b missing after install" >&2; exit 1; }
done
[ -x /usr/lib/frr/bgpd ] || { echo "install-tools: /usr/lib/frr/bgpd missing after install" >&2; exit 1; }
[ -x /usr/sbin/bird ] && [ -x /usr/sbin/birdc ] || { echo "install-tools: bird or birdc missing after install" >&2; exit 1; }
[ -x /usr/bin/etcd ] || { echo "install-tools: etcd missing after install" >&2; exit 1; }
[ -x /usr/bin/chromium ] || { echo "install-tools: chromium missing after install" >&2; exit 1; }
[ -x /usr/bin/stayrtr ] || { echo "install-tools: stayrtr missing after install" >&2; exit 1; }
log "ready: influxd gobgpd gobgp gnmi_cli in $GOBIN; FRR in /usr/lib/frr; BIRD in /usr/sbin; etcd in /usr/bin"
