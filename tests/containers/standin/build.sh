#!/usr/bin/env bash
# Builds the two stand-in base images for the container test from Debian's packages, for
# machines that cannot pull `python:3.11-slim-trixie` and `postgres:16` from a registry:
#   localhost/datasync-standin-python:TAG    Debian bookworm's Python 3.11 with pip and venv
#   localhost/datasync-standin-postgres:TAG  Debian bookworm's PostgreSQL 15, entrypoint beside
# TAG changes whenever this recipe or the entrypoint changes, so a new recipe rebuilds and an
# unchanged one is taken from the engine's local storage (a few seconds instead of minutes).
#
# Usage: build.sh ENGINE    (podman or docker; needs root for debootstrap)
# Prints the two image references on stdout, one per line; everything else goes to stderr.
set -euo pipefail

engine=${1:?usage: build.sh podman|docker}
here=$(cd "$(dirname "$0")" && pwd)
suite=bookworm
tag="$suite-$(cat "$here/build.sh" "$here/postgres-entrypoint.sh" | sha256sum | cut -c1-12)"
py_image="localhost/datasync-standin-python:$tag"
pg_image="localhost/datasync-standin-postgres:$tag"

say() { printf 'standin: %s\n' "$*" >&2; }

have_image() { "$engine" image inspect "$1" >/dev/null 2>&1; }

# debootstrap into a fresh directory, then drop what an image does not need: package caches,
# package lists, documentation, manual pages, translations.
bootstrap() { # DIR PACKAGES
  local dir=$1 packages=$2 log=$1.log
  say "debootstrap $suite with $packages (about a minute)"
  # DEBIAN_MIRROR: optional; debootstrap's own default mirror otherwise.
  if ! debootstrap --variant=minbase --include="$packages" "$suite" "$dir" ${DEBIAN_MIRROR:+"$DEBIAN_MIRROR"} >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    say "debootstrap failed (the lines above end its log)"
    return 1
  fi
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin "$dir"/var/lib/apt/lists/* \
         "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/*
}

import() { # DIR IMAGE CHANGE...
  local dir=$1 image=$2
  shift 2
  local args=()
  for change in "$@"; do args+=(--change "$change"); done
  if [ "$engine" = podman ]; then args+=(--quiet); fi
  tar -C "$dir" -c . | "$engine" import "${args[@]}" - "$image" >/dev/null
}

work=""
cleanup() { if [ -n "$work" ]; then rm -rf "$work"; fi; }
trap cleanup EXIT

if have_image "$py_image" && have_image "$pg_image"; then
  say "cached: $py_image, $pg_image"
else
  command -v debootstrap >/dev/null || { say "debootstrap is not installed"; exit 1; }
  [ "$(id -u)" = 0 ] || { say "debootstrap needs root"; exit 1; }
  work=$(mktemp -d "${TMPDIR:-/var/tmp}/datasync-standin.XXXXXX")
  std_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

  if ! have_image "$py_image"; then
    bootstrap "$work/python" python3,python3-venv,python3-pip
    # Debian marks its Python as externally managed; an image's pip must install into it as
    # the official image's does. The Dockerfile calls `python`.
    rm -f "$work"/python/usr/lib/python3*/EXTERNALLY-MANAGED
    ln -sf python3 "$work/python/usr/bin/python"
    import "$work/python" "$py_image" "ENV PATH=$std_path" 'ENV LANG=C.UTF-8' 'CMD ["python3"]'
    rm -rf "$work/python"
    say "built $py_image"
  fi

  if ! have_image "$pg_image"; then
    bootstrap "$work/postgres" postgresql-15
    # The package creates a cluster of its own; the entrypoint makes the real one in $PGDATA.
    rm -rf "$work"/postgres/etc/postgresql/*/main "$work"/postgres/var/lib/postgresql/*
    # LLVM is only PostgreSQL's JIT (switched off by the entrypoint): 130 MB left out.
    rm -rf "$work"/postgres/usr/lib/*/libLLVM-*.so* "$work"/postgres/usr/lib/*/libz3.so* \
           "$work"/postgres/usr/lib/postgresql/*/lib/llvmjit* "$work"/postgres/usr/lib/postgresql/*/lib/bitcode
    install -m 0755 "$here/postgres-entrypoint.sh" "$work/postgres/usr/local/bin/postgres-entrypoint.sh"
    pg_bin=$(cd "$work/postgres" && ls -d usr/lib/postgresql/*/bin | head -n 1)
    import "$work/postgres" "$pg_image" "ENV PATH=/$pg_bin:$std_path" 'ENV LANG=C.UTF-8' \
      'ENV PGDATA=/var/lib/postgresql/data' 'ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]' \
      'CMD ["postgres"]' 'STOPSIGNAL SIGINT' 'EXPOSE 5432'
    rm -rf "$work/postgres"
    say "built $pg_image"
  fi
  # Stand-ins of earlier recipes are no longer used.
  "$engine" images --format '{{.Repository}}:{{.Tag}}' \
    | grep -E '^localhost/datasync-standin-(python|postgres):' | grep -v ":$tag\$" \
    | while read -r old; do "$engine" rmi "$old" >/dev/null 2>&1 && say "removed $old"; done \
    || true
fi

echo "$py_image"
echo "$pg_image"
