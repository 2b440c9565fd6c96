#!/usr/bin/env bash
# install_check.sh - the newcomer's check (ctest e2e.install): install the
# build into a temporary prefix and use it from there, as a new user would,
# with nothing from the build tree.
#   (a) the README's C example (the ```c block of "libvmfmm in brief")
#       builds with pkg-config and with find_package(vmfmm) -> vmfmm::vmfmm
#       (the README's ```cmake block) and runs;
#   (b) every installed program answers --help from the prefix (exit 0, its
#       usage on stdout) without LD_LIBRARY_PATH, and has its man page;
#   (c) systemd-analyze verify accepts the installed units, and their
#       ExecStart binary, --config file and Documentation= targets exist
#       in the prefix.
#   install_check.sh BUILD_DIR SOURCE_DIR [SANITIZE]
set -euo pipefail
build=$1
src=$2
sanitize=${3:-}
tmp=$(mktemp -d /tmp/vmfmm-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() {
    echo "install_check: FAIL: $*" >&2
    exit 1
}
unset LD_LIBRARY_PATH PKG_CONFIG_PATH CMAKE_PREFIX_PATH

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" || fail "cmake --install"
pc=$(find "$prefix" -name vmfmm.pc | head -1)
[ -n "$pc" ] || fail "no vmfmm.pc installed"
libdir=$(dirname "$(dirname "$pc")")

# (a) The README's example, byte for byte.
awk '/^## libvmfmm in brief/ {f = 1} f && /^```c$/ {p = 1; next} p && /^```$/ {exit} p' \
    "$src/README.md" >"$tmp/example.c"
grep -q 'int main' "$tmp/example.c" || fail "no complete C example in README.md"
awk '/^## libvmfmm in brief/ {f = 1} f && /^```cmake$/ {p = 1; next} p && /^```$/ {exit} p' \
    "$src/README.md" >"$tmp/CMakeLists.txt"
grep -q 'vmfmm::vmfmm' "$tmp/CMakeLists.txt" || fail "no find_package example in README.md"
extra=()
[ -n "$sanitize" ] && extra=(-fsanitize="$sanitize")
check_run() {
    local out
    out=$("$@") || fail "the example exited $?: $*"
    echo "$out" | grep -q '^EM: mean log-likelihood' || fail "unexpected output: $out"
    # Row 500 is the first of class 9: it must be predicted so, and surely.
    echo "$out" | grep -Eq '^row 500: class 9 \(p = (1\.000|0\.99[0-9])\)$' ||
        fail "unexpected output: $out"
}
export PKG_CONFIG_PATH=$libdir/pkgconfig
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror "${extra[@]}" "$tmp/example.c" \
    $(pkg-config --cflags --libs vmfmm) -o "$tmp/example-pc" || fail "cc with pkg-config"
LD_LIBRARY_PATH=$libdir check_run "$tmp/example-pc"
unset PKG_CONFIG_PATH
cmake -S "$tmp" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="${extra[*]}" >"$tmp/cm.log" 2>&1 || { cat "$tmp/cm.log" >&2; fail "find_package"; }
cmake --build "$tmp/cm" >>"$tmp/cm.log" 2>&1 || { cat "$tmp/cm.log" >&2; fail "cmake --build"; }
check_run "$tmp/cm/example"
echo "install_check: README example built with pkg-config and find_package, runs"

# (b) Every installed program: --help from the prefix, and its man page.
declare -A section=([vmfd]=8 [vmfctl]=1 [vmfsim]=1 [vmfmm]=1)
n=0
for exe in "$prefix"/bin/*; do
    name=$(basename "$exe")
    out=$(env -u LD_LIBRARY_PATH "$exe" --help) || fail "$name --help exited $?"
    echo "$out" | grep -qi "usage" || fail "$name --help printed no usage"
    [ -n "${section[$name]:-}" ] || fail "$name: an installed program this test does not know"
    page="$prefix/share/man/man${section[$name]}/$name.${section[$name]}"
    [ -f "$page" ] || fail "$name has no man page ($page)"
    n=$((n + 1))
done
[ "$n" -eq 4 ] || fail "expected 4 installed programs, found $n"
[ -f "$prefix/share/man/man5/vmfd.conf.5" ] || fail "vmfd.conf(5) not installed"
echo "install_check: $n programs answer --help from the prefix and have man pages"

# (c) The installed units.
units=$(find "$prefix" -name 'vmfd.service' -o -name 'vmfd.socket')
[ "$(echo "$units" | wc -l)" -eq 2 ] || fail "units not installed: $units"
service=$(echo "$units" | grep 'vmfd.service$')
exec_start=$(sed -n 's/^ExecStart=//p' "$service")
bin=${exec_start%% *}
[ "$bin" = "$prefix/bin/vmfd" ] || fail "ExecStart names $bin, not the installed vmfd"
conf=$(echo "$exec_start" | sed -n 's/.*--config \([^ ]*\).*/\1/p')
[ "$conf" = "$prefix/etc/vmfd/vmfd.conf" ] || fail "--config names $conf"
[ -f "$conf" ] || fail "$conf does not exist"
"$bin" --config "$conf" --check-config >/dev/null || fail "vmfd rejects the installed $conf"
for u in $units; do
    for doc in $(sed -n 's/^Documentation=//p' "$u"); do
        case "$doc" in
        file://*) [ -f "${doc#file://}" ] || fail "$u: Documentation $doc does not exist" ;;
        man:*)
            page=${doc#man:}
            sec=${page##*(}
            sec=${sec%)}
            [ -f "$prefix/share/man/man$sec/${page%(*}.$sec" ] || fail "$u: no page for $doc"
            ;;
        *) fail "$u: unexpected Documentation $doc" ;;
        esac
    done
done
# systemd-analyze runs man(1) for man: links; without man-db it cannot.
man_opt=--man=yes
command -v man >/dev/null || man_opt=--man=no
# shellcheck disable=SC2086
MANPATH=$prefix/share/man systemd-analyze verify $man_opt $units >"$tmp/verify.log" 2>&1 ||
    { cat "$tmp/verify.log" >&2; fail "systemd-analyze verify"; }
if [ -s "$tmp/verify.log" ]; then
    cat "$tmp/verify.log" >&2
    fail "systemd-analyze verify printed warnings"
fi
echo "install_check: systemd-analyze verify ($man_opt) accepts $(echo $units | wc -w) units"
