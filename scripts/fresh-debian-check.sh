#!/usr/bin/env bash
# fresh-debian-check.sh - does the README's promise hold on a fresh Debian 12?
#
# Builds a minimal Debian 12 (bookworm) root with `debootstrap
# --variant=minbase` from this machine's Debian mirror (the first bookworm
# URI of /etc/apt/sources.list*), clones the repository inside it the way a
# newcomer would (apt-get install git, git clone), and runs the README's two
# commands, ./scripts/run.sh and ./scripts/test.sh, printing the wall time of
# each. Any failing step fails the script. Not part of CI: it needs root and
# the Debian archive, and takes a while (every package, two builds, every
# test twice).
#
#   sudo scripts/fresh-debian-check.sh [--keep] [REPO [REF]]
#
# REPO defaults to the repository holding this script, REF to its HEAD. The
# root lives under /var/tmp/vmfmm-fresh.XXXXXX and is removed at the end
# unless --keep is given. Environment: MIRROR overrides the mirror.
set -euo pipefail

keep=0
if [ "${1:-}" = --keep ]; then
    keep=1
    shift
fi
here=$(cd "$(dirname "$0")/.." && pwd)
repo=${1:-$here}
ref=${2:-$(git -C "$repo" rev-parse HEAD)}

if [ "$(id -u)" -ne 0 ]; then
    echo "fresh-debian-check: needs root (debootstrap, chroot, mounts)" >&2
    exit 77
fi
for tool in debootstrap git chroot mount; do
    command -v "$tool" >/dev/null || { echo "fresh-debian-check: $tool is missing" >&2; exit 69; }
done

mirror_of_host() {
    local uri
    uri=$(awk '/^URIs:/ {u = $2} /^Suites:/ && / bookworm( |$)/ && u {print u; exit}' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}
mirror=${MIRROR:-$(mirror_of_host)}

root=$(mktemp -d /var/tmp/vmfmm-fresh.XXXXXX)
chmod 755 "$root" # apt downloads as _apt
mounted=()
cleanup() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount -l "${mounted[$i]}" 2>/dev/null || true
    done
    if [ "$keep" -eq 1 ]; then
        echo "fresh-debian-check: root kept in $root" >&2
    else
        rm -rf --one-file-system "$root"
    fi
}
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {s = b - a; printf "%dm%04.1fs", s / 60, s - 60 * int(s / 60)}'; }
step() { echo "== $*" >&2; }

echo "fresh-debian-check: mirror $mirror, repository $repo at $ref, root $root"
step "debootstrap --variant=minbase bookworm"
t0=$(now)
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
    { tail -30 "$root.debootstrap.log" >&2; exit 1; }
rm -f "$root.debootstrap.log"
t_boot=$(elapsed "$t0" "$(now)")

# The chroot uses the same archive as this machine, nothing else.
if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1 && [ -z "${MIRROR:-}" ]; then
    rm -f "$root/etc/apt/sources.list"
    for f in /etc/apt/sources.list.d/*.sources; do
        grep -q 'debian' "$f" && cp "$f" "$root/etc/apt/sources.list.d/"
    done
else
    echo "deb $mirror bookworm main" >"$root/etc/apt/sources.list"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
for m in proc sys dev dev/pts; do
    mkdir -p "$root/$m"
    case "$m" in
    proc) mount -t proc proc "$root/proc" ;;
    sys) mount -t sysfs sys "$root/sys" ;;
    *) mount --bind "/$m" "$root/$m" ;;
    esac
    mounted+=("$root/$m")
done
mkdir -p "$root/dev/shm"
mount -t tmpfs shm "$root/dev/shm"
mounted+=("$root/dev/shm")

# The repository at REF, as a bare repository to clone from inside.
git clone -q --bare --no-local "$repo" "$root/srv/vmfmm.git"
git -C "$root/srv/vmfmm.git" update-ref refs/heads/fresh-check "$ref"

in_root() {
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive "$@"
}
step "apt-get install git; git clone"
t0=$(now)
in_root bash -c 'apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends git ca-certificates >/dev/null'
in_root git clone -q --branch fresh-check /srv/vmfmm.git /root/vmfmm
t_clone=$(elapsed "$t0" "$(now)")

# The README's two commands, verbatim, from the clone. VMF_PORT keeps the
# replay's daemon off ports other work on this machine may use.
port=$((20000 + RANDOM % 20000))
step "./scripts/run.sh"
t0=$(now)
set +e
in_root bash -c "cd /root/vmfmm && VMF_PORT=$port ./scripts/run.sh" 2>&1 | tail -25
rc=${PIPESTATUS[0]}
set -e
t_run=$(elapsed "$t0" "$(now)")
[ "$rc" -eq 0 ] || { echo "fresh-debian-check: ./scripts/run.sh failed ($rc) after $t_run" >&2; exit 1; }

step "./scripts/test.sh"
t0=$(now)
rc=0
in_root bash -c 'cd /root/vmfmm && ./scripts/test.sh' >"$root/test.log" 2>&1 || rc=$?
t_test=$(elapsed "$t0" "$(now)")
grep -E '^(== |[0-9]+% tests passed|Total Test time)|tests failed' "$root/test.log" || true
if [ "$rc" -ne 0 ]; then
    grep -E 'Failed|\*\*\*' "$root/test.log" | head -40 >&2
    echo "fresh-debian-check: ./scripts/test.sh failed ($rc) after $t_test" >&2
    exit 1
fi

echo
echo "fresh-debian-check: passed on Debian $(cat "$root/etc/debian_version") (minbase), $(nproc) CPUs"
printf '  %-34s %s\n' "debootstrap --variant=minbase" "$t_boot" \
    "apt-get install git; git clone" "$t_clone" \
    "./scripts/run.sh" "$t_run" \
    "./scripts/test.sh" "$t_test"
