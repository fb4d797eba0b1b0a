#!/usr/bin/env bash
# Installs, with apt-get, what xvs needs to build, test and run its demo: only what is
# missing, so running it again changes nothing.
set -euo pipefail

# "package:command" — a package counts as present when its command is on PATH (another
# install, such as pyenv's python3, will do), or for libraries when dpkg has it.
NEEDS=(
  clang:clang            # compiles the BPF programs
  libelf-dev:            # libbpf (vendored by libbpf-sys) links libelf
  zlib1g-dev:
  pkg-config:pkg-config
  make:make
  gcc:cc                 # host C compiler: libbpf and the ABI probe
  iproute2:ip            # labs: namespaces, veth, bridge, ss
  ethtool:ethtool        # labs: the veth checksum fix
  procps:sysctl
  iputils-ping:ping
  curl:curl
  python3:python3        # labs: UDP echo and raw frames
  nginx-light:nginx      # labs: the real servers' web server
  tcpdump:tcpdump        # labs: what goes over the wire
  keepalived:keepalived  # labs: the VRRP peer xvs must interoperate with
  prometheus:promtool    # tests: `promtool check metrics` on a scrape
  nftables:nft           # bench: nftables DNAT, a path xvs is measured against
  dpkg-dev:dpkg-shlibdeps  # make deb: the package's library dependencies
  lintian:lintian        # tests: the package is lintian-clean
  mmdebstrap:mmdebstrap  # tests: a clean Debian 12 to install the package in
  systemd-container:systemd-nspawn  # tests: that Debian booted, to run the unit under systemd
  chromium:chromium      # tests: the status page as a real browser renders it
  tidy:tidy              # tests: the status page is valid HTML
  bird2:bird             # labs: the router's and the directors' BGP (scale-out behind ECMP)
)

missing=()
for need in "${NEEDS[@]}"; do
  pkg=${need%%:*}
  cmd=${need#*:}
  if [ -n "$cmd" ]; then
    command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 && continue
  elif dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    continue
  fi
  missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: everything needed is installed"
else
  echo "setup: installing ${missing[*]}"
  nginx_before=$(pgrep -x nginx >/dev/null && echo yes || echo no)
  prom_before=$(pgrep -x prometheus >/dev/null && echo yes || echo no)
  bird_before=$(pgrep -x bird >/dev/null && echo yes || echo no)
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's package may start a system nginx on port 80; the labs run their own.
  if [ "$nginx_before" = no ] && pgrep -x nginx >/dev/null; then
    nginx -s quit 2>/dev/null || pkill -x nginx || true
  fi
  # Likewise the Prometheus server of Debian's package: the tests only need promtool.
  if [ "$prom_before" = no ] && pgrep -x prometheus >/dev/null; then
    pkill -x prometheus || true
  fi
  # And the host's own BIRD: the labs run one per namespace.
  if [ "$bird_before" = no ] && pgrep -x bird >/dev/null; then
    pkill -x bird || true
  fi
fi

command -v cargo >/dev/null || { echo "setup: cargo is not on PATH: install stable Rust first" >&2; exit 1; }
