#!/usr/bin/env bash
# Does a clean Debian 12 machine pass the README's two commands? A maintainer's check,
# not part of CI: run it before calling an install step done, and whenever one changes.
#
#   bash scripts/check-fresh-machine.sh [--only demo|test] [--rebuild] [--keep]
#
# Needs root on a Linux host (namespaces, mounts, cgroups), and the Debian mirror, PyPI
# and the npm registry; installs mmdebstrap with apt when it is missing.
#
#  1. Builds a Debian 12 (bookworm) root filesystem with mmdebstrap, once: variant
#     minbase (Debian's "required" packages: what a Debian system can't do without,
#     including bash, mount and util-linux, which entering it needs), plus git and
#     ca-certificates, and nothing else. It comes from the same Debian mirror and suites
#     as this host's apt sources, and is cached as a tarball in
#     ${ERRAND_FRESH_CACHE:-~/.cache/errand/fresh-machine} (--rebuild makes it again).
#     /etc/hosts is Debian's standard one (with "::1 localhost"), /root is 0700.
#  2. Unpacks a fresh copy of it for each of the two commands, so that each command
#     proves itself alone: the demo gets nothing the test command installed, nor the
#     reverse. The commands are read from README.md's "Two commands" section.
#  3. Clones this checkout's HEAD (committed work only) to /root/errand in the copy.
#  4. Enters the copy with its own mount, PID, UTS and cgroup namespaces (unshare, then
#     pivot_root: bubblewrap refuses to run under a plain chroot). Inside: /proc, /sys,
#     the host's /dev with a private /dev/shm, a private /run, /tmp on the copy's disk
#     (as on Debian), and the host's cgroup hierarchies mounted afresh in the new cgroup
#     namespace, rooted in a cgroup made for this run: dockerd and errand's per-command
#     cgroups inside never see, reap or get reaped by the host's. (Tried on hosts with
#     cgroup v1 or hybrid hierarchies, as this project's machines have; on a pure
#     cgroup v2 host the controllers inside are those delegated to the caller's cgroup.)
#     The network is the host's (the registries must be reachable).
#  5. Carries over from the host only its CA certificates (/usr/local/share/
#     ca-certificates; and NODE_EXTRA_CA_CERTS, pointing at the copy's own bundle, when
#     the host sets it: Node ignores the system store), its proxy settings
#     (http_proxy, https_proxy, no_proxy, all_proxy and their upper-case forms; apt's
#     Acquire::*::Proxy; pip's and npm's proxy settings) and its DNS resolver
#     (/etc/resolv.conf). Nothing else: no pip or npm configuration, no caches.
#  6. Runs each command as root in /root/errand, with a clean environment (the test
#     command with CI=true, as .ci/run does, so that a missing tool fails instead of
#     skipping), and prints PASS or FAIL and the wall time of each. Full logs go to
#     <cache>/logs/. The exit status is 0 when every command passed.
#
# --only NAME runs one of them (demo or test); --keep leaves the copies in
# <cache>/runs/ for a look (they are removed at the next run). One run at a time.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${ERRAND_FRESH_CACHE:-$HOME/.cache/errand/fresh-machine}
SUITE=bookworm
VARIANT=minbase
INCLUDE=git,ca-certificates
HOSTNAME_INSIDE=errand-fresh
ONLY=""
REBUILD=0
KEEP=0

log() { printf '[fresh-machine] %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 2
}

while (($#)); do
  case $1 in
    --only)
      ONLY=${2:?--only needs demo or test}
      shift
      ;;
    --rebuild) REBUILD=1 ;;
    --keep) KEEP=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
[[ -z $ONLY || $ONLY == demo || $ONLY == test ]] || die "--only takes demo or test"
[[ $(id -u) -eq 0 ]] || die "must run as root (namespaces, mounts and cgroups)"
for tool in unshare pivot_root flock tar git; do
  command -v "$tool" >/dev/null || die "$tool is missing"
done

# --- the README's two commands -------------------------------------------------------------
mapfile -t COMMANDS < <(
  awk '/^## Two commands/ { section = 1; next }
       section && /^## / { exit }
       section && /^```/ { if (block) exit; block = 1; next }
       block && !/^[[:space:]]*(#|$)/' "$ROOT/README.md"
)
((${#COMMANDS[@]} == 2)) || die "expected two commands in README.md's \"Two commands\" section, found ${#COMMANDS[@]}"
DEMO_CMD=${COMMANDS[0]}
TEST_CMD=${COMMANDS[1]}

# --- what is carried over from the host ------------------------------------------------------
PROXY_VARS=(http_proxy https_proxy no_proxy all_proxy ftp_proxy
  HTTP_PROXY HTTPS_PROXY NO_PROXY ALL_PROXY FTP_PROXY)
APT_PROXY=$(apt-config dump 2>/dev/null | grep -iE '^Acquire::[^ ]*::Proxy(::[^ ]*)? ' || true)
PIP_PROXY=$(cat /etc/pip.conf /etc/xdg/pip/pip.conf "$HOME/.config/pip/pip.conf" "$HOME/.pip/pip.conf" \
  2>/dev/null | sed -n 's/^[[:space:]]*proxy[[:space:]]*=[[:space:]]*//p' | tail -n 1 || true)
NPM_PROXY=$(cat /etc/npmrc /usr/etc/npmrc /usr/local/etc/npmrc "$HOME/.npmrc" 2>/dev/null |
  grep -E '^[[:space:]]*(proxy|https-proxy|noproxy)[[:space:]]*=' || true)

# The host's Debian entries, as one-line sources (third-party repositories are left out).
debian_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    grep -E '^[[:space:]]*deb[[:space:]]' "$f" | grep -E '/debian(-security)?/?[[:space:]]' || true
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
      {
        types = uris = suites = comps = signed = ""; enabled = 1
        for (i = 1; i <= NF; i++) {
          line = $i; sub(/^[ \t]+/, "", line)
          if (line ~ /^#/) continue
          key = tolower(line); sub(/:.*/, "", key)
          value = line; sub(/^[^:]*:[ \t]*/, "", value)
          if (key == "types") types = value
          else if (key == "uris") uris = value
          else if (key == "suites") suites = value
          else if (key == "components") comps = value
          else if (key == "signed-by") signed = value
          else if (key == "enabled" && tolower(value) == "no") enabled = 0
        }
        if (!enabled || types !~ /(^| )deb( |$)/) next
        if (signed != "" && signed !~ /debian-archive-keyring/) next
        n = split(uris, u, " "); m = split(suites, s, " ")
        for (a = 1; a <= n; a++) for (b = 1; b <= m; b++)
          if (u[a] ~ /\/debian(-security)?\/?$/) print "deb " u[a] " " s[b] " " comps
      }' "$f"
  done
}
mapfile -t SOURCES < <(debian_sources | grep -E "[[:space:]]$SUITE(-[a-z]+)?[[:space:]]" | sort -u)
((${#SOURCES[@]})) || SOURCES=("deb http://deb.debian.org/debian $SUITE main"
  "deb http://deb.debian.org/debian $SUITE-updates main"
  "deb http://deb.debian.org/debian-security $SUITE-security main")

HOSTS_FILE="127.0.0.1	localhost
127.0.1.1	$HOSTNAME_INSIDE

# The following lines are desirable for IPv6 capable hosts
::1     localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters"

# --- the cached root filesystem --------------------------------------------------------------
mkdir -p "$CACHE/logs" "$CACHE/runs"
exec 9>"$CACHE/lock"
flock -n 9 || die "another check-fresh-machine.sh is running (lock: $CACHE/lock)"
key=$(printf '%s\n' "$SUITE" "$VARIANT" "$INCLUDE" "${SOURCES[@]}" "$APT_PROXY" "$HOSTS_FILE" |
  sha256sum | cut -c1-12)
TARBALL="$CACHE/$SUITE-$VARIANT-$key.tar"
if [[ $REBUILD == 1 || ! -f $TARBALL || ! -s $TARBALL ]]; then
  if ! command -v mmdebstrap >/dev/null; then
    log "apt-get install mmdebstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >&2
  fi
  aptopts=()
  while IFS= read -r line; do
    [[ -n $line ]] && aptopts+=(--aptopt="$line")
  done <<<"$APT_PROXY"
  log "building $TARBALL: $SUITE, variant $VARIANT, plus $INCLUDE, from:"
  printf '    %s\n' "${SOURCES[@]}" >&2
  rm -rf "$TARBALL.partial"
  mmdebstrap --mode=root --format=tar --variant="$VARIANT" --include="$INCLUDE" "${aptopts[@]}" \
    --customize-hook="echo $HOSTNAME_INSIDE > \"\$1/etc/hostname\"" \
    --customize-hook="printf '%s\n' '$HOSTS_FILE' > \"\$1/etc/hosts\"" \
    "$SUITE" "$TARBALL.partial" "${SOURCES[@]}" >&2
  mv "$TARBALL.partial" "$TARBALL"
fi

# --- cgroups -----------------------------------------------------------------------------------
# The host's cgroup mounts: "mount point|type|controllers|root in the hierarchy".
cgroup_mounts() {
  awk '{ for (i = 7; $i != "-"; i++) {}
         type = $(i + 1); if (type != "cgroup" && type != "cgroup2") next
         n = split($(i + 3), opts, ","); ctl = ""
         for (j = 1; j <= n; j++) {
           o = opts[j]
           if (o ~ /^(rw|ro|xattr|clone_children|noprefix|nsdelegate|favordynmods|cpuset_v2_mode|memory_[a-z_]+)$/ || o ~ /^release_agent=/) continue
           ctl = ctl (ctl == "" ? "" : ",") o
         }
         print $5 "|" type "|" ctl "|" $4 }' /proc/self/mountinfo
}
# This process's cgroup in the hierarchy with these controllers ("" for cgroup2).
own_cgroup() {
  local want=$1 line ctl
  while IFS= read -r line; do
    ctl=${line#*:}
    ctl=${ctl%%:*}
    if [[ $(tr ',' '\n' <<<"$ctl" | sort | paste -sd,) == "$(tr ',' '\n' <<<"$want" | sort | paste -sd,)" ]]; then
      echo "${line#*:*:}"
      return
    fi
  done </proc/self/cgroup
}

# The cgroups of run NAME, one a line: "folder|type|controllers|mount point",
# one in every hierarchy, below this process's own cgroup there.
run_cgroups() {
  local name=$1 point type ctl mroot own seen=" "
  while IFS='|' read -r point type ctl mroot; do
    [[ $point == /sys/fs/cgroup || $point == /sys/fs/cgroup/* ]] || continue
    [[ $seen == *" $type:$ctl "* ]] && continue
    seen+="$type:$ctl "
    own=$(own_cgroup "$ctl")
    own=${own#"${mroot%/}"}
    printf '%s|%s|%s|%s\n' "$point${own%/}/errand-fresh-$name-$$" "$type" "$ctl" "$point"
  done < <(cgroup_mounts)
}

# Moves the calling (sub)shell into the run's cgroups, and exports CGROUP_LAYOUT: what
# to mount inside, where.
join_run_cgroups() {
  local dir type ctl point f layout=""
  while IFS='|' read -r dir type ctl point; do
    mkdir -p "$dir"
    if [[ $ctl == cpuset ]]; then
      for f in cpuset.cpus cpuset.mems cpus mems; do
        if [[ -f $dir/$f ]]; then cat "$(dirname "$dir")/$f" >"$dir/$f"; fi
      done
    fi
    echo "$BASHPID" >"$dir/cgroup.procs"
    if [[ $type == cgroup2 ]]; then
      layout+="$point|cgroup2|"$'\n'
    elif [[ $ctl == name=* ]]; then
      layout+="$point|cgroup|none,$ctl"$'\n'
    else
      layout+="$point|cgroup|$ctl"$'\n'
    fi
  done < <(run_cgroups "$1")
  CGROUP_LAYOUT=$layout
  CGROUP_PURE_V2=0
  [[ -f /sys/fs/cgroup/cgroup.controllers ]] && CGROUP_PURE_V2=1
  export CGROUP_LAYOUT CGROUP_PURE_V2
}

# Removes the run's cgroups (and what dockerd and errand made in them) once the kernel
# has reaped the processes that were in them.
remove_run_cgroups() {
  local dir rest try
  while IFS='|' read -r dir rest; do
    for try in 1 2 3 4 5 6 7 8 9 10; do
      [[ -d $dir ]] || break
      find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || sleep 1
    done
    if [[ -d $dir ]]; then log "could not remove cgroup $dir"; fi
  done < <(run_cgroups "$1")
  return 0
}

# --- entering a copy -------------------------------------------------------------------------
# Runs as PID 1 of the new namespaces, with the host's binaries, until pivot_root.
INNER=$(
  cat <<'EOF'
set -euo pipefail
R=$1
shift
echo "$HOSTNAME_INSIDE" >/proc/sys/kernel/hostname
mount --bind "$R" "$R"
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount --rbind /sys "$R/sys"
if [[ $CGROUP_PURE_V2 == 0 ]]; then
  mount -t tmpfs -o mode=755,nosuid,nodev,noexec cgroup "$R/sys/fs/cgroup"
fi
while IFS='|' read -r point type opts; do
  [[ -n $point ]] || continue
  mkdir -p "$R$point"
  mount -t "$type" ${opts:+-o "$opts"} "$type" "$R$point"
done <<<"$CGROUP_LAYOUT"
if [[ $CGROUP_PURE_V2 == 1 ]]; then
  # cgroup v2 has no processes in inner nodes: PID 1 moves to a leaf, and the
  # controllers this run's cgroup was given are handed on to its children.
  mkdir -p "$R/sys/fs/cgroup/init"
  echo 0 >"$R/sys/fs/cgroup/init/cgroup.procs"
  for c in $(cat "$R/sys/fs/cgroup/cgroup.controllers"); do
    echo "+$c" >"$R/sys/fs/cgroup/cgroup.subtree_control" 2>/dev/null || true
  done
fi
mount --rbind /dev "$R/dev"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$R/dev/shm"
mount -t tmpfs -o mode=755,nosuid,nodev run "$R/run"
mkdir -p "$R/run/lock" "$R/.host-root"
cd "$R"
pivot_root . .host-root
exec /usr/bin/env -i "$@"
EOF
)

# Runs inside, as PID 1, with the copy's own binaries.
STAGE2=$(
  cat <<'EOF'
umount -l /.host-root && rmdir /.host-root || exit 2
update-ca-certificates >/dev/null 2>&1 || echo "[fresh-machine] update-ca-certificates failed" >&2
cd /root/errand || exit 2
echo "[fresh-machine] $(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -r), in /root/errand at $(git log -1 --format='%h %s' | cut -c1-72)" >&2
echo "[fresh-machine] \$ $ERRAND_FRESH_CMD" >&2
bash -c "$ERRAND_FRESH_CMD"
EOF
)

# run NAME COMMAND [VAR=VALUE...]: one command in a fresh copy. Sets RESULT_* globals.
run_in_fresh_copy() {
  local name=$1 cmd=$2
  shift 2
  local dir="$CACHE/runs/$name" logfile
  logfile="$CACHE/logs/$(date +%Y%m%d-%H%M%S)-$name.log"
  if grep -qF " $dir/" /proc/self/mountinfo; then die "something is still mounted under $dir"; fi
  rm -rf "$dir"
  mkdir -p "$dir"
  log "$name: unpacking a fresh copy of $(basename "$TARBALL") into $dir"
  tar -C "$dir" --numeric-owner -xpf "$TARBALL"
  git clone -q "$ROOT" "$dir/root/errand"
  RESULT_COMMIT=$(git -C "$dir/root/errand" rev-parse --short HEAD)
  # Carried over from the host: CA certificates, proxy settings, the DNS resolver.
  if compgen -G '/usr/local/share/ca-certificates/*' >/dev/null; then
    cp -a /usr/local/share/ca-certificates/. "$dir/usr/local/share/ca-certificates/"
  fi
  cat /etc/resolv.conf >"$dir/etc/resolv.conf"
  [[ -z $APT_PROXY ]] || printf '%s\n' "$APT_PROXY" >"$dir/etc/apt/apt.conf.d/95host-proxy"
  [[ -z $PIP_PROXY ]] || printf '[global]\nproxy = %s\n' "$PIP_PROXY" >"$dir/etc/pip.conf"
  [[ -z $NPM_PROXY ]] || printf '%s\n' "$NPM_PROXY" >"$dir/root/.npmrc"
  local env=(HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    "ERRAND_FRESH_CMD=$cmd" "$@")
  local var
  for var in "${PROXY_VARS[@]}"; do
    [[ -z ${!var:-} ]] || env+=("$var=${!var}")
  done
  [[ -z ${NODE_EXTRA_CA_CERTS:-} ]] || env+=(NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)

  log "$name: running \`$cmd\` (log: $logfile)"
  local start end status
  start=$(date +%s)
  set +e
  trap 'remove_run_cgroups "$name"' EXIT
  (
    join_run_cgroups "$name"
    HOSTNAME_INSIDE=$HOSTNAME_INSIDE exec unshare --mount --pid --uts --cgroup --fork \
      --propagation private --kill-child -- \
      bash -c "$INNER" inner "$dir" "${env[@]}" /bin/bash -c "$STAGE2"
  ) 2>&1 | tee "$logfile"
  status=${PIPESTATUS[0]}
  set -e
  end=$(date +%s)
  remove_run_cgroups "$name"
  trap - EXIT
  RESULT_STATUS=$status
  RESULT_SECONDS=$((end - start))
  RESULT_LOG=$logfile
  if [[ $KEEP == 0 ]]; then rm -rf "$dir"; fi
}

duration() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

declare -a SUMMARY=()
overall=0
for name in demo test; do
  [[ -z $ONLY || $ONLY == "$name" ]] || continue
  if [[ $name == demo ]]; then
    run_in_fresh_copy demo "$DEMO_CMD"
  else
    run_in_fresh_copy test "$TEST_CMD" CI=true
  fi
  verdict=PASS
  ((RESULT_STATUS == 0)) || {
    verdict=FAIL
    overall=1
  }
  if [[ $name == demo ]]; then shown=$DEMO_CMD; else shown="CI=true $TEST_CMD"; fi
  line="$verdict  $name  $(duration "$RESULT_SECONDS")  \`$shown\`  (exit $RESULT_STATUS; at $RESULT_COMMIT; log $RESULT_LOG)"
  SUMMARY+=("$line")
  if [[ $name == test ]]; then
    pytest_line=$(grep -aE '^(=+ )?[0-9]+ (passed|failed|errors?|skipped)\b.* in [0-9.]+s' "$RESULT_LOG" | tail -n 1 || true)
    unit_line=$(grep -aE '^# (pass|fail) [0-9]+$' "$RESULT_LOG" | tail -n 2 | paste -sd' ' || true)
    e2e_line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed$' "$RESULT_LOG" | tail -n 1 || true)
    SUMMARY+=("      pytest: ${pytest_line:-(no summary)}")
    SUMMARY+=("      vscode-client unit tests: ${unit_line:-(not run)}")
    SUMMARY+=("      vscode-client end-to-end: ${e2e_line:-(not run)}")
  fi
done

echo
echo "== fresh Debian 12 machine ($(basename "$TARBALL"))"
printf '%s\n' "${SUMMARY[@]}"
exit "$overall"
