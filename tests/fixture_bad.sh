#!/usr/bin/env bash
# fixture_bad FSNN FIXTURE_DIR: `fsnn fixture` refuses what it cannot check
# with a message naming the file and a non-zero exit, never a crash: a
# missing file, bytes that are not HDF5, a truncated fixture, a fixture
# whose parameter has no fsnn tensor in the name map, and one that lacks the
# root attributes describing its net.
set -u
fsnn=$1 dir=$2
src="$dir/fc_if_t5.h5"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
# expect PATTERN FILE: exit 1, stderr matching PATTERN, stdout ending "fixture FAIL".
expect() {
    local pattern=$1 file=$2 out err rc
    out=$("$fsnn" fixture "$file" 2>"$tmp/err")
    rc=$?
    err=$(cat "$tmp/err")
    if [ "$rc" -eq 1 ] && grep -Eq -- "$pattern" <<<"$err" && [ "$(tail -n1 <<<"$out")" = "fixture FAIL" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAILED: $file: exit $rc, stderr: $err, last line: $(tail -n1 <<<"$out")"
    fi
}
[ -r "$src" ] || { echo "FAILED: fixture $src missing"; echo "0 passed, 1 failed"; exit 1; }
expect "missing.h5" "$tmp/missing.h5"
printf 'not an HDF5 file at all\n' >"$tmp/text.h5"
expect "text.h5" "$tmp/text.h5"
head -c 200000 "$src" >"$tmp/trunc.h5"
expect "trunc.h5" "$tmp/trunc.h5"
# A copy with one more parameter under init/ that the map does not know.
cp "$src" "$tmp/extra.h5"
chmod u+w "$tmp/extra.h5"
h5copy -i "$src" -o "$tmp/extra.h5" -s /init/classifier.bias -d /init/network_q.lin.weight
expect "extra.h5.*'network_q.lin.weight' has no fsnn tensor" "$tmp/extra.h5"
# The datasets without train/ and without the root attributes that
# describe the net.
for g in init input grad_broyden grad_converged adjoint_broyden adjoint_converged eval; do
    h5copy -i "$src" -o "$tmp/notrain.h5" -s "/$g" -d "/$g"
done
expect "notrain.h5.*no attribute .net." "$tmp/notrain.h5"
# A nonsense override of the fixture's configuration.
out=$("$fsnn" fixture "$src" model.time_steps=many 2>"$tmp/err")
rc=$?
if [ "$rc" -eq 1 ] && grep -q "model.time_steps" "$tmp/err" && [ "$(tail -n1 <<<"$out")" = "fixture FAIL" ]; then
    pass=$((pass + 1))
else
    fail=$((fail + 1))
    echo "FAILED: override model.time_steps=many: exit $rc, stderr: $(cat "$tmp/err")"
fi
echo "fixture_bad: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
