#!/usr/bin/env bash
# manpages_check.sh - every option a program's --help prints (of the program
# and of each of its commands) appears in its man page, every key vmfd
# --check-config prints appears in vmfd.conf(5), every page renders without
# a warning, and every page its SEE ALSO names exists (ctest e2e.manpages).
#   manpages_check.sh BIN_DIR SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
fail=0
page_text() { # the page's source with groff's escapes of '-' and fonts undone
    sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(em/-/g' -e 's/\\&//g' "$1"
}
check() { # check PAGE PROGRAM [COMMAND...]
    local page=$1 prog=$2
    shift 2
    local text opts
    text=$(page_text "$page")
    opts=$("$bin/$prog" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u)
    for cmd in "$@"; do
        opts+=$'\n'$("$bin/$prog" $cmd --help | { grep -o -- '--[a-z][a-z0-9-]*' || true; })
    done
    local n=0
    for o in $(echo "$opts" | sort -u); do
        n=$((n + 1))
        if ! grep -q -- "$o\b" <<<"$text"; then
            echo "manpages_check: $prog: $o is in --help but not in $(basename "$page")" >&2
            fail=1
        fi
    done
    echo "manpages_check: $(basename "$page"): $n options of --help checked"
}
check "$src/daemon/vmfd.8" vmfd
check "$src/daemon/vmfctl.1" vmfctl status ingest predict batch checkpoints checkpoint \
    restore "model export" "checkpoint export"
check "$src/sim/vmfsim.1" vmfsim run gen ablate
# vmfmm's commands as its --help lists them, so a new command is checked too.
vmfmm_cmds=$("$bin/vmfmm" --help | sed -n '/^Commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p')
[ -n "$vmfmm_cmds" ] || { echo "manpages_check: vmfmm --help lists no commands" >&2; exit 1; }
# shellcheck disable=SC2086
check "$src/sim/vmfmm.1" vmfmm $vmfmm_cmds

# Every key of the configuration, as vmfd prints it, in vmfd.conf(5).
conf_text=$(page_text "$src/config/vmfd.conf.5")
n=0
section=""
while IFS= read -r line; do
    case "$line" in
    \#*) continue ;;
    \[*\]) section=${line#[}; section=${section%]}; continue ;;
    esac
    key=${line%% =*}
    n=$((n + 1))
    if ! grep -q -- "^\.BR $key \"" <<<"$conf_text"; then
        echo "manpages_check: vmfd.conf.5 lacks [$section] $key" >&2
        fail=1
    fi
    if ! grep -q -- "^\.SS \[$section\]" <<<"$conf_text"; then
        echo "manpages_check: vmfd.conf.5 lacks the section [$section]" >&2
        fail=1
    fi
done < <("$bin/vmfd" --check-config)
echo "manpages_check: vmfd.conf.5: $n keys of --check-config checked"

# Each page renders cleanly, and its SEE ALSO names only pages we install
# (or well-known system ones).
for page in daemon/vmfd.8 daemon/vmfctl.1 sim/vmfsim.1 sim/vmfmm.1 config/vmfd.conf.5; do
    if command -v groff >/dev/null; then
        warn=$(groff -man -Tutf8 -ww -z "$src/$page" 2>&1 || true)
        if [ -n "$warn" ]; then
            echo "manpages_check: $page: groff: $warn" >&2
            fail=1
        fi
    fi
    for ref in $(page_text "$src/$page" | sed -n '/^\.SH SEE ALSO/,/^\.SH/p' |
        grep -o '[a-z][a-z0-9_.-]*([0-9])' | sort -u); do
        case "$ref" in
        vmfd\(8\) | vmfctl\(1\) | vmfsim\(1\) | vmfmm\(1\) | vmfd.conf\(5\)) ;;
        systemd* | sqlite3\(1\) | journalctl\(1\) | systemctl\(1\) | curl\(1\) | signal\(7\)) ;;
        *) echo "manpages_check: $page: SEE ALSO names $ref, which is not ours" >&2; fail=1 ;;
        esac
    done
done
exit $fail
