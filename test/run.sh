#!/usr/bin/env bash
# Runs every witn test on a throwaway PostgreSQL cluster and ends with "N passed, M failed".
#   bash test/run.sh            everything (about 6-10 minutes on 2 cores)
#   WITN_FUZZ_SECONDS=20        shorter fuzzing (default 60)
#   WITN_SKIP_FUZZ=1            no fuzzing
# Installs what is missing (apt-get), builds with warnings as errors, installs witn, starts its
# own cluster in a temp dir on a free port, and removes it at the end.
set -u
cd "$(dirname "$0")/.."
. test/cluster.sh

declare -A suite_pass suite_fail
suites=()
failures=()
log_dir=$(mktemp -d /tmp/witn-test-logs.XXXXXX)

record() { # suite passed failed [what failed]
    local s=$1
    [[ -v "suite_pass[$s]" ]] || { suites+=("$s"); suite_pass[$s]=0; suite_fail[$s]=0; }
    suite_pass[$s]=$((suite_pass[$s] + $2))
    suite_fail[$s]=$((suite_fail[$s] + $3))
    [ -n "${4:-}" ] && failures+=("$s: $4")
    return 0
}

section() { printf '\n=== %s ===\n' "$1"; }

section "dependencies"
witn_ensure_deps || { echo "could not install dependencies"; exit 2; }

section "build (warnings are errors)"
if (make -s clean >/dev/null 2>&1; make -j2 2>&1 | tail -n 20) && make -s install >/dev/null 2>&1; then
    record build 1 0
else
    record build 0 1 "make failed"
    echo "build failed: nothing else can run"
    printf '\n0 passed, 1 failed\n'
    exit 1
fi

section "unit tests (GoogleTest)"
if make -s -j2 test/unit/witn_unit >"$log_dir/unit-build.log" 2>&1; then
    test/unit/witn_unit --gtest_brief=1 >"$log_dir/unit.log" 2>&1
    unit_rc=$?
    passed=$(sed -n 's/.*\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log_dir/unit.log" | tail -1)
    failed=$(sed -n 's/.*\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log_dir/unit.log" | tail -1)
    grep -E '^\[  FAILED  \] [A-Za-z]' "$log_dir/unit.log" | head -20
    [ "$unit_rc" -ne 0 ] && [ -z "$failed" ] && failed=1
    record unit "${passed:-0}" "${failed:-0}" "$([ "${failed:-0}" != 0 ] && echo "see $log_dir/unit.log")"
    echo "unit: ${passed:-0} passed, ${failed:-0} failed"
else
    cat "$log_dir/unit-build.log" | tail -20
    record unit 0 1 "unit tests did not build"
fi

section "throwaway cluster"
witn_cluster_start || { echo "cluster did not start"; printf '\n0 passed, 1 failed\n'; exit 1; }
echo "PostgreSQL on port $PGPORT, socket in $PGHOST"
witn_template_db || { record cluster 0 1 "template database"; }

section "pg_regress"
make -s installcheck >"$log_dir/regress.log" 2>&1
grep -E '^(ok|not ok|test | +[a-z_]+ +\.\.\.)' "$log_dir/regress.log" | sed 's/^/  /'
passed=$(grep -cE '(^ok )|(\.\.\. ok)' "$log_dir/regress.log")
failed=$(grep -cE '(^not ok )|(\.\.\. FAILED)' "$log_dir/regress.log")
if [ "$failed" -gt 0 ] && [ -f regression.diffs ]; then
    head -60 regression.diffs
fi
record regress "$passed" "$failed" "$([ "$failed" != 0 ] && echo "see regression.diffs")"

section "pgTAP"
for f in test/pgtap/*.sql; do
    name=$(basename "$f" .sql)
    witn_fresh_db "t_$name"
    (cd test/pgtap && timeout 600 pg_prove --verbose -d "t_$name" "$name.sql") >"$log_dir/pgtap-$name.log" 2>&1
    passed=$(grep -cE '^ok [0-9]' "$log_dir/pgtap-$name.log")
    failed=$(grep -cE '^not ok [0-9]' "$log_dir/pgtap-$name.log")
    if ! grep -q '^Result: PASS' "$log_dir/pgtap-$name.log" && [ "$failed" -eq 0 ]; then
        failed=1 # the script itself failed (plan mismatch, SQL error)
    fi
    printf '  %-28s %4d ok  %d not ok\n' "$name" "$passed" "$failed"
    if [ "$failed" -gt 0 ]; then
        grep -E '^not ok|^# +(Failed|caught|wanted|have|want|got|expected)|ERROR|Dubious|planned' "$log_dir/pgtap-$name.log" | head -20 | sed 's/^/    /'
    fi
    record pgtap "$passed" "$failed" "$([ "$failed" != 0 ] && echo "$name")"
    witn_drop_db "t_$name"
done

section "parallel sessions and pg_cron"
for f in test/concurrency/*.sh test/cron/*.sh; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .sh)
    witn_fresh_db "s_$name"
    if PGDATABASE="s_$name" timeout 600 bash "$f" >"$log_dir/shell-$name.log" 2>&1; then
        printf '  %-28s ok\n' "$name"
        record shell 1 0
    else
        printf '  %-28s FAILED\n' "$name"
        tail -20 "$log_dir/shell-$name.log" | sed 's/^/    /'
        record shell 0 1 "$name"
    fi
    witn_drop_db "s_$name"
done

section "fuzzing (libFuzzer + ASan + UBSan)"
if [ -n "${WITN_SKIP_FUZZ:-}" ]; then
    echo "skipped (WITN_SKIP_FUZZ)"
elif make -s fuzz FUZZ_SECONDS="${WITN_FUZZ_SECONDS:-60}" >"$log_dir/fuzz.log" 2>&1; then
    grep -E 'Done [0-9]+ runs|stat::number_of_executed_units' "$log_dir/fuzz.log" | sed 's/^/  /'
    record fuzz 1 0
else
    tail -30 "$log_dir/fuzz.log"
    record fuzz 0 1 "see $log_dir/fuzz.log"
fi

section "summary"
total_pass=0
total_fail=0
for s in "${suites[@]}"; do
    printf '  %-10s %6d passed %4d failed\n' "$s" "${suite_pass[$s]}" "${suite_fail[$s]}"
    total_pass=$((total_pass + suite_pass[$s]))
    total_fail=$((total_fail + suite_fail[$s]))
done
for f in "${failures[@]}"; do echo "  FAILED: $f"; done
echo "  logs: $log_dir"
printf '\n%d passed, %d failed\n' "$total_pass" "$total_fail"
[ "$total_fail" -eq 0 ]
