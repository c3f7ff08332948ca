#!/usr/bin/env bash
# Can this machine run the container test? Installs what it needs when it can, then proves
# that a container starts. Exit 0: run `make container-test`. Exit 1: it cannot, and the last
# line printed says why. Used by .ci/run; harmless to run by hand.
#
# With a Docker engine (`docker info` answers and Compose v2 is there) nothing is installed.
# Otherwise podman from Debian's packages (with runc: crun has been seen failing where cgroups
# are hybrid), debootstrap for the stand-in base images, and podman-compose from PyPI into
# .venv-containers.
set -uo pipefail
cd "$(dirname "$0")/../.."

cannot() { echo "container test cannot run here: $*"; exit 1; }

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 \
   && docker compose version >/dev/null 2>&1; then
  echo "container test: Docker engine found"
  exit 0
fi

[ "$(id -u)" = 0 ] || cannot "no Docker engine, and installing podman and debootstrap needs root"

packages=(podman buildah runc catatonit netavark aardvark-dns iptables debootstrap)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || cannot "no Docker engine and no apt-get to install podman"
  echo "container test: installing ${missing[*]}"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -qq "${missing[@]}" >/dev/null; } 2>&1 | tail -n 5; then
    cannot "apt-get could not install ${missing[*]}"
  fi
fi

if ! make -s .venv-containers/bin/podman-compose >/dev/null; then
  cannot "podman-compose could not be installed from PyPI"
fi

# A container from a two-file image (the host's `true` and the libraries it loads): no
# registry and no base image needed, yet it goes through the runtime, the ulimits and the
# default network exactly as the test's containers do.
export CONTAINERS_CONF="$PWD/tests/containers/containers.conf"
probe=localhost/datasync-container-probe:1
files=$(ldd /usr/bin/true | grep -o '/[^ ]*' | sort -u)
# shellcheck disable=SC2086
if ! tar -ch /usr/bin/true $files 2>/dev/null | podman import -q - "$probe" >/dev/null 2>&1; then
  cannot "podman cannot import an image: $(podman info 2>&1 | tail -n 1)"
fi
if ! out=$(podman run --rm "$probe" /usr/bin/true 2>&1); then
  podman rmi -f "$probe" >/dev/null 2>&1
  cannot "podman cannot start a container: $(printf '%s' "$out" | grep -v -e syslog -e 'systemd connection' | tail -n 2)"
fi
podman rmi -f "$probe" >/dev/null 2>&1
echo "container test: podman $(podman version -f '{{.Client.Version}}' 2>/dev/null) runs containers"
exit 0
