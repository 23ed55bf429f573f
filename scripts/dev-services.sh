#!/usr/bin/env bash
# Brings up what Dockyard's tests and `npm start` need on this machine, and checks what must already run.
# Idempotent: every step is skipped when its result is already there.
#   - Debian packages: docker.io, busybox-static, mercurial, docker-registry (installed when missing)
#   - a Docker engine (dockerd without bridge or iptables: containers get loopback only)
#   - the base image busybox:latest, imported from busybox-static (no image can be pulled here)
#   - PostgreSQL and Redis must answer (they are started before the session; this script only checks them)
set -euo pipefail

log() { printf '[dev-services] %s\n' "$*"; }

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
command -v hg >/dev/null 2>&1 || need_pkgs+=(mercurial)
[ -x /usr/bin/docker-registry ] || need_pkgs+=(docker-registry)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  nohup dockerd --bridge=none --iptables=false >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { log "dockerd did not come up; see /var/log/dockerd.log"; exit 1; }
fi

if ! docker image inspect busybox:latest >/dev/null 2>&1; then
  log "importing busybox:latest from busybox-static"
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/etc"
  cp /bin/busybox "$root/bin/busybox"
  chroot "$root" /bin/busybox --install -s /bin
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >>"$root/etc/passwd"
  tar -C "$root" -c . | docker import -c 'CMD ["sh"]' - busybox:latest >/dev/null
  rm -rf "$root"
fi

pg_isready -h 127.0.0.1 -p 5432 -q || { log "PostgreSQL does not answer on 127.0.0.1:5432"; exit 1; }
[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ] || { log "Redis does not answer on 127.0.0.1:6379"; exit 1; }
log "ready: docker $(docker version --format '{{.Server.Version}}'), busybox:latest, PostgreSQL, Redis"
