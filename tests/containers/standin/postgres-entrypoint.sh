#!/bin/sh
# Entrypoint of the stand-in PostgreSQL image that the container test builds from Debian's
# packages when the official `postgres` image cannot be pulled. It honours what
# docker-compose.yml relies on from the official image: POSTGRES_USER, POSTGRES_PASSWORD and
# POSTGRES_DB on first start, data in $PGDATA, listening on every address with password
# authentication for connections from other containers. The cluster is UTF8: datasync refuses
# SQL_ASCII. Not a general replacement for the official image.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
export PGDATA

if [ "${1:-postgres}" = postgres ] && [ "$#" -gt 0 ]; then
  shift
fi
case "${1:-}" in
  ''|-*) ;;
  *) exec "$@" ;;   # any other command, like the official image
esac

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  chmod 2775 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres stand-in: POSTGRES_PASSWORD is empty; refusing to initialise" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  {
    echo "listen_addresses = '*'"
    echo "jit = off"   # the stand-in leaves out LLVM
  } >>"$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    quoted=$(printf '%s' "$POSTGRES_DB" | sed 's/"/""/g')
    echo "CREATE DATABASE \"$quoted\";" | postgres --single -D "$PGDATA" postgres >/dev/null
  fi
  echo "postgres stand-in: initialised $PGDATA (UTF8) with database $POSTGRES_DB"
fi

exec postgres -D "$PGDATA" "$@"
