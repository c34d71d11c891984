#!/usr/bin/env bash
# Make sure a Docker engine answers, starting one in the background if none does.
#
# Used by CI and by the Docker sandbox tests. When `docker info` already works (a system
# service, or DOCKER_HOST pointing at another engine) it does nothing. Otherwise it starts
#   dockerd --iptables=false --bridge=none --storage-driver=vfs
# which works inside the VMs and containers this project runs on (no iptables, no
# bridge network, no overlay filesystem needed; errand's containers use network "none"),
# logs to $DOCKERD_LOG (default /tmp/dockerd.log) and waits until the engine answers.
# Needs Debian's docker.io package and root (or sudo).
set -euo pipefail

LOG=${DOCKERD_LOG:-/tmp/dockerd.log}
WAIT_S=${DOCKERD_WAIT_S:-60}

log() { printf '[start-dockerd] %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  log "a Docker engine already answers"
  exit 0
fi
if [[ -n "${DOCKER_HOST:-}" && "${DOCKER_HOST}" != unix://* ]]; then
  log "DOCKER_HOST=${DOCKER_HOST} does not answer; not starting a local engine in its place"
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  log "dockerd is not installed (Debian/Ubuntu: apt-get install docker.io)"
  exit 1
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo -n); fi

log "starting dockerd (log: $LOG)"
"${SUDO[@]}" nohup dockerd --iptables=false --ip6tables=false --bridge=none \
  --storage-driver=vfs >"$LOG" 2>&1 </dev/null &

for ((i = 0; i < WAIT_S * 5; i++)); do
  if docker info >/dev/null 2>&1; then
    log "engine ready"
    exit 0
  fi
  sleep 0.2
done
log "dockerd did not answer within ${WAIT_S}s; last lines of $LOG:"
tail -n 20 "$LOG" >&2 || true
exit 1
