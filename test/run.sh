#!/usr/bin/env bash
# Runs every witn test and ends with the line "N passed, M failed" (exit status 0 only when
# M = 0). `bash .ci/run` runs exactly this.
#
#   bash test/run.sh
#
# Steps, each counted; a failing step does not stop the later ones, except the build:
#   deps         apt-get install whatever is missing (test/cluster.sh lists the packages)
#   build        make -j2 && make install (warnings are errors: the Makefile has -Werror)
#   unit         make unit: the GoogleTest suite, counted per test
#   cluster      a throwaway PostgreSQL 15 with pg_cron, in a temp dir (test/cluster.sh)
#   regress      make installcheck (pg_regress), counted per test
#   template     a template database with pgtap and witn, copied for each test file below
#   pgtap        pg_prove on each test/pgtap/*.sql in its own database, counted per assertion
#   concurrency  each test/concurrency/*.sh in its own database, counted per script
#   cron         each test/cron/*.sh in its own database, counted per script
#   ops          each test/ops/*.sh (backup and restore, upgrade from every release since 0.1.0) in its own database, counted per script
#   webhooks     each test/webhooks/*.sh on a cluster of its own with witn preloaded (delivery
#                worker, receivers on 127.0.0.1, faults, crashes), counted per check
#   citus        each test/citus/*.sh on a Citus cluster of its own (1 coordinator + 2 workers,
#                test/citus/cluster.sh), counted per check; skipped (and said so) without Citus
#   docs         test/docs/run.sh: the code blocks of README.md and docs/{concepts,sql-reference,
#                postgrest,operations}.md run in order, a fresh database per page, on a cluster of
#                its own; the output they show compared; counted per block (skips are noted)
#   fuzz         make fuzz (libFuzzer with ASan/UBSan), counted as one test
#   bench        test/bench/run.sh --smoke: every benchmark scenario at 1/100 scale on its own
#                cluster, with its correctness checks (as root only), counted as one test; and
#                test/bench/corrections.sh --smoke (credits and reversals against plain SQL);
#                test/bench/webhooks.sh --smoke (settlement with an endpoint, a backlog's drain,
#                ingestion while it drains);
#                test/bench/simulate.sh --smoke (what-if over a settled history: events replayed
#                per second, memory, NULL terms reproduce what happened);
#                test/bench/retention.sh --smoke (witn.purge_events: throughput, ingestion while
#                it purges, space; the purged outcomes are exactly the eligible ones);
#                test/bench/citus.sh --smoke (Citus against a single node) when Citus is there
#
# Environment:
#   WITN_FUZZ_SECONDS=N  fuzzing time in total over all targets (default 60)
#   WITN_SKIP_FUZZ=1     no fuzzing
#   WITN_SKIP_BENCH=1    no benchmark smoke run
#   WITN_KEEP_LOGS=1     keep the per-step logs (their directory is printed at the end)
#   WITN_ONLY="a b"      run only these of pgtap/concurrency/cron test files (base names)
set -uo pipefail

WITN_RUN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$WITN_RUN_ROOT" || exit 2
# shellcheck source=test/cluster.sh
. "$WITN_RUN_ROOT/test/cluster.sh"

FUZZ_SECONDS=${WITN_FUZZ_SECONDS:-60}
ONLY=" ${WITN_ONLY:-} "
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/witn-test-logs.XXXXXX") || exit 2
# shellcheck disable=SC2016 # expanded when the hook runs
if [ "${WITN_KEEP_LOGS:-0}" = 1 ]; then
    witn_on_exit 'echo "logs kept in $LOGS"'
else
    witn_on_exit 'rm -rf "$LOGS"'
fi
START=$SECONDS

# ---- bookkeeping --------------------------------------------------------------------------------
declare -A PASS FAIL NOTE
SUITES=()
FAILURES=()

record() { # SUITE PASSED FAILED [NOTE]
    local s=$1
    if [ -z "${PASS[$s]+set}" ]; then
        SUITES+=("$s")
        PASS[$s]=0 FAIL[$s]=0 NOTE[$s]=""
    fi
    PASS[$s]=$((PASS[$s] + $2))
    FAIL[$s]=$((FAIL[$s] + $3))
    if [ -n "${4:-}" ]; then
        NOTE[$s]=${NOTE[$s]:+${NOTE[$s]}; }$4
    fi
}
failed() { FAILURES+=("$1"); } # what to list under the summary

section() { printf '\n==> %s   [%dm%02ds]\n' "$1" $(((SECONDS - START) / 60)) $(((SECONDS - START) % 60)); }
indent() { sed 's/^/    /'; }
# Prints a log, or its first and last lines when it is long.
show_log() { # FILE [MAX_LINES]
    local max=${2:-150} n
    n=$(wc -l <"$1")
    if ((n <= max)); then
        indent <"$1"
    else
        head -n $((max / 3)) "$1" | indent
        echo "    ... ($((n - max)) lines left out) ..."
        tail -n $((max - max / 3)) "$1" | indent
    fi
}
selected() { [ "$ONLY" = "  " ] || [[ $ONLY == *" $1 "* ]]; }
dbname() { echo "witn_$1_$2" | tr -c 'a-zA-Z0-9_\n' '_' | tr '[:upper:]' '[:lower:]' | cut -c1-63; }

summary() {
    section "summary"
    local s total_pass=0 total_fail=0
    printf '    %-13s %8s %8s   %s\n' suite passed failed notes
    printf '    %-13s %8s %8s   %s\n' ------------- ------ ------ -----
    for s in "${SUITES[@]}"; do
        printf '    %-13s %8d %8d   %s\n' "$s" "${PASS[$s]}" "${FAIL[$s]}" "${NOTE[$s]}"
        total_pass=$((total_pass + PASS[$s]))
        total_fail=$((total_fail + FAIL[$s]))
    done
    printf '    %-13s %8d %8d   %s\n' total "$total_pass" "$total_fail" \
        "in $(((SECONDS - START) / 60))m$(((SECONDS - START) % 60))s"
    if ((${#FAILURES[@]})); then
        echo
        echo "    failed:"
        printf '      %s\n' "${FAILURES[@]}"
    fi
    echo
    echo "$total_pass passed, $total_fail failed"
    ((total_fail == 0))
}

echo "witn tests: $(nproc 2>/dev/null || echo '?') cores, repository $WITN_RUN_ROOT"

# ---- dependencies -------------------------------------------------------------------------------
section "dependencies"
# shellcheck disable=SC2119 # no extra packages
if witn_ensure_deps 2>&1; then
    record deps 1 0
else
    record deps 0 1 "apt-get failed"
    failed "deps: packages missing"
fi

# ---- build --------------------------------------------------------------------------------------
section "build and install (make -j2 && make install; warnings are errors)"
if witn_build_install >"$LOGS/build.log" 2>&1; then
    echo "    built and installed into $("$WITN_PG_CONFIG" --sharedir)/extension and $("$WITN_PG_CONFIG" --pkglibdir)"
    record build 1 0
else
    echo "    build FAILED:"
    # The compiler's messages, without the (long) compile commands.
    grep -vE '^(g\+\+|gcc|clang\+\+|clang|cc|c\+\+) ' "$LOGS/build.log" | tail -n 60 | indent
    record build 0 1 "nothing else ran"
    failed "build: make or make install failed"
    summary
    exit 1
fi

# ---- unit tests ---------------------------------------------------------------------------------
section "unit tests (GoogleTest, make unit)"
witn_run_bounded 900 "$LOGS/unit.log" ${WITN_LOCK[@]+"${WITN_LOCK[@]}"} make -j2 unit PG_CONFIG="$WITN_PG_CONFIG"
rc=$?
passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) tests\{0,1\}\..*/\1/p' "$LOGS/unit.log" | tail -n 1)
nfailed=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) tests\{0,1\}, listed below.*/\1/p' "$LOGS/unit.log" | tail -n 1)
skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) tests\{0,1\}, listed below.*/\1/p' "$LOGS/unit.log" | tail -n 1)
if [ -z "$passed" ] && [ -z "$nfailed" ]; then
    # No summary: it did not build, or it crashed. Count what finished, and one failure.
    passed=$(grep -c '^\[       OK \]' "$LOGS/unit.log")
    nfailed=$(($(grep -cE '^\[  FAILED  \] [^ ]+ \(' "$LOGS/unit.log") + 1))
    echo "    make unit did not complete (exit $rc):"
    show_log "$LOGS/unit.log" 80
    failed "unit: did not build or did not finish (exit $rc)"
else
    passed=${passed:-0} nfailed=${nfailed:-0}
    if ((rc != 0 && nfailed == 0)); then nfailed=1; fi
    grep -E '^\[==========\]|^\[  (PASSED|FAILED|SKIPPED) +\]' "$LOGS/unit.log" | indent
    if ((nfailed)); then
        # Everything but the per-test progress lines: the failures and their messages.
        grep -vE '^\[ RUN      \]|^\[       OK \]|^\[----------\]|^$' "$LOGS/unit.log" | head -n 200 | indent
        while read -r t; do failed "unit: $t"; done < <(sed -n 's/^\[  FAILED  \] \([^ ,]*\).*([0-9]* ms)$/\1/p' "$LOGS/unit.log")
    fi
fi
record unit "$passed" "$nfailed" "${skipped:+$skipped skipped}"

# ---- cluster ------------------------------------------------------------------------------------
section "throwaway PostgreSQL cluster (pg_cron in database postgres)"
have_cluster=0
# Not in a pipeline: witn_cluster_start exports PGHOST, PGPORT and PGUSER to this shell.
if witn_cluster_start >"$LOGS/cluster.log" 2>&1 &&
    jobs_table=$(witn_psql -At -d postgres -c "SELECT count(*) FROM cron.job" 2>&1); then
    indent <"$LOGS/cluster.log"
    echo "    cron.job is readable in database postgres ($jobs_table jobs); server log: $PGHOST/server.log"
    have_cluster=1
    record cluster 1 0
else
    show_log "$LOGS/cluster.log" 120
    record cluster 0 1
    failed "cluster: did not start (the suites that need it did not run)"
fi

# ---- pg_regress ---------------------------------------------------------------------------------
section "regression tests (pg_regress, make installcheck)"
if ((!have_cluster)); then
    echo "    not run: no cluster"
    record regress 0 1 "not run: no cluster"
elif ! ls sql/*.sql >/dev/null 2>&1; then
    echo "    no sql/*.sql tests"
    record regress 0 0 "no tests"
else
    rm -f results/regression.diffs results/regression.out
    witn_run_bounded 600 "$LOGS/regress.log" make installcheck PG_CONFIG="$WITN_PG_CONFIG"
    rc=$?
    # pg_regress 15: "test name ... ok 12 ms", "     name ... FAILED 12 ms" in a parallel group.
    lines=$(grep -E '^(test | +)[^ ]+ +\.\.\. +(ok|FAILED|failed \(ignored\))' "$LOGS/regress.log")
    passed=$(grep -cE '\.\.\. +(ok|failed \(ignored\))' <<<"$lines")
    nfailed=$(grep -cE '\.\.\. +FAILED' <<<"$lines")
    [ -n "$lines" ] && indent <<<"$lines"
    if ((rc != 0 && nfailed == 0)); then
        echo "    make installcheck failed (exit $rc):"
        show_log "$LOGS/regress.log" 60
        nfailed=1
        failed "regress: make installcheck failed (exit $rc)"
    fi
    if ((nfailed)); then
        grep -E '\.\.\. +FAILED' <<<"$lines" | awk '{ print "regress: " ($1 == "test" ? $2 : $1) }' |
            while read -r l; do echo "$l"; done >"$LOGS/regress.failed"
        while read -r l; do failed "$l"; done <"$LOGS/regress.failed"
        if [ -f results/regression.diffs ]; then
            echo "    ---- results/regression.diffs ----"
            show_log results/regression.diffs 400
        fi
    fi
    record regress "$passed" "$nfailed"
fi

# ---- template database --------------------------------------------------------------------------
have_template=0
if ((have_cluster)); then
    section "template database (CREATE EXTENSION pgtap; CREATE EXTENSION witn CASCADE)"
    if witn_template_db >"$LOGS/template.log" 2>&1; then
        echo "    $WITN_TEMPLATE_DB: $(witn_psql -At -d "$WITN_TEMPLATE_DB" -c \
            "SELECT string_agg(extname || ' ' || extversion, ', ' ORDER BY extname) FROM pg_extension")"
        have_template=1
        record template 1 0
    else
        show_log "$LOGS/template.log" 60
        record template 0 1
        failed "template: CREATE EXTENSION witn CASCADE failed (pgtap, concurrency and cron did not run)"
    fi
fi

# ---- pgTAP --------------------------------------------------------------------------------------
section "pgTAP (pg_prove, one fresh database per file)"
files=0 files_failed=0 assertions_failed=0
for f in test/pgtap/*.sql; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .sql)
    selected "$name" || continue
    files=$((files + 1))
    if ((!have_template)); then
        files_failed=$((files_failed + 1))
        failed "pgtap: $name not run"
        continue
    fi
    db=$(dbname tap "$name")
    t0=$SECONDS
    if ! witn_fresh_db "$db" >"$LOGS/pgtap-$name.log" 2>&1; then
        rc=1
    else
        witn_run_bounded 600 "$LOGS/pgtap-$name.log" pg_prove --verbose -d "$db" "$f"
        rc=$?
    fi
    log=$LOGS/pgtap-$name.log
    # Top-level TAP lines; "ok N # skip" is a skip, "not ok N # TODO" an expected failure.
    ok=$(grep -cE '^ok [0-9]+' "$log")
    skip=$(grep -ciE '^ok [0-9]+.*# *skip' "$log")
    todo=$(grep -ciE '^not ok [0-9]+.*# *todo' "$log")
    notok=$(($(grep -cE '^not ok [0-9]+' "$log") - todo))
    planned=$(sed -n 's/^1\.\.\([0-9]*\).*/\1/p' "$log" | head -n 1)
    unrun=0
    if [ -n "$planned" ] && ((planned > ok + notok + todo)); then
        unrun=$((planned - ok - notok - todo))
    fi
    bad=$((notok + unrun))
    if ((rc != 0 && bad == 0)); then bad=1; fi # the script itself failed: SQL error, bad plan
    record pgtap "$((ok - skip))" "$bad"
    assertions_failed=$((assertions_failed + bad))
    extra=""
    ((skip)) && extra+=", $skip skipped"
    ((todo)) && extra+=", $todo todo"
    if ((rc == 0 && bad == 0)); then
        printf '    ok     %-28s %5d assertions%s  (%ds)\n' "$name" "$ok" "$extra" $((SECONDS - t0))
        witn_drop_db "$db" >/dev/null 2>&1
    else
        files_failed=$((files_failed + 1))
        printf '    FAILED %-28s %5d ok, %d not ok, %d not run of %s planned%s, exit %d  (%ds)\n' \
            "$name" "$ok" "$notok" "$unrun" "${planned:-?}" "$extra" "$rc" $((SECONDS - t0))
        # The failed assertions with their diagnostics, psql errors, and the end of the log.
        grep -nE -A6 '^not ok [0-9]+' "$log" | grep -vE '^[0-9]+-ok [0-9]+' | head -n 120 | indent | indent
        grep -nE 'ERROR|FATAL|psql:|Dubious|Parse errors|Bad plan|timed out' "$log" | head -n 20 | indent | indent
        echo "        ---- end of log ----"
        tail -n 15 "$log" | indent | indent
        failed "pgtap: $name ($bad failed)"
    fi
done
if ((files == 0)); then
    record pgtap 0 0 "no test files"
else
    record pgtap 0 0 "$files files, $((files - files_failed)) passed, $files_failed failed"
fi

# ---- shell-driven tests: concurrency, cron ------------------------------------------------------
run_shell_suite() { # SUITE DIR
    local suite=$1 dir=$2 f name db rc t0 log n=0 checks
    for f in "$dir"/*.sh; do
        [ -f "$f" ] || continue
        name=$(basename "$f" .sh)
        selected "$name" || continue
        n=$((n + 1))
        if ((!have_template)); then
            record "$suite" 0 1
            failed "$suite: $name not run"
            continue
        fi
        db=$(dbname "$suite" "$name")
        log=$LOGS/$suite-$name.log
        t0=$SECONDS
        if ! witn_fresh_db "$db" >"$log" 2>&1; then
            rc=1
        else
            witn_run_bounded 600 "$log" env PGDATABASE="$db" bash "$f"
            rc=$?
        fi
        checks=$(grep -cE '^ok ' "$log")
        if ((rc == 0)); then
            printf '    ok     %-28s %s(%ds)\n' "$name" "$( ((checks)) && echo "$checks checks  ")" $((SECONDS - t0))
            # What it measured or reported, without the passing checks.
            grep -vE '^ok ' "$log" | head -n 40 | indent | indent
            record "$suite" 1 0
            witn_drop_db "$db" >/dev/null 2>&1
        else
            printf '    FAILED %-28s exit %d  (%ds)\n' "$name" "$rc" $((SECONDS - t0))
            show_log "$log" 150 | indent
            record "$suite" 0 1
            failed "$suite: $name (exit $rc)"
        fi
    done
    ((n)) || record "$suite" 0 0 "no tests"
}

if [ -d test/concurrency ]; then
    section "concurrency (test/concurrency/*.sh, parallel sessions, one fresh database each)"
    run_shell_suite concurrency test/concurrency
fi
if [ -d test/cron ]; then
    section "pg_cron end to end (test/cron/*.sh, one fresh database each)"
    run_shell_suite cron test/cron
fi
if [ -d test/ops ]; then
    section "operations (test/ops/*.sh: backup and restore, upgrade from every release since 0.1.0, one fresh database each)"
    run_shell_suite ops test/ops
fi

# ---- webhook delivery ---------------------------------------------------------------------------
# Each script starts a cluster of its own with witn in shared_preload_libraries (the delivery
# launcher and workers) and receivers on 127.0.0.1 (test/webhooks/lib.sh). Counted per check.
if [ -d test/webhooks ]; then
    section "webhook delivery (test/webhooks/*.sh: a cluster each with witn preloaded, receivers on 127.0.0.1)"
    for f in test/webhooks/*.sh; do
        name=$(basename "$f" .sh)
        [ "$name" = lib ] && continue
        selected "$name" || continue
        log=$LOGS/webhooks-$name.log
        t0=$SECONDS
        # Its own cluster on another port range than the main one.
        witn_run_bounded 600 "$log" env WITN_PORT_BASE=55432 bash "$f"
        rc=$?
        ok=$(grep -cE '^ok ' "$log")
        bad=$(grep -cE '^not ok ' "$log")
        if ((rc == 0 && bad == 0)); then
            printf '    ok     %-28s %d checks  (%ds)\n' "$name" "$ok" $((SECONDS - t0))
            grep -E '^# ' "$log" | head -n 20 | indent | indent
        else
            printf '    FAILED %-28s %d ok, %d not ok, exit %d  (%ds)\n' "$name" "$ok" "$bad" "$rc" $((SECONDS - t0))
            show_log "$log" 150 | indent
            failed "webhooks: $name"
        fi
        record webhooks "$ok" "$((bad + (rc != 0 && bad == 0)))"
    done
fi

# ---- Citus -----------------------------------------------------------------------------------
# A cluster of its own: a coordinator and two workers on 127.0.0.1, with witn distributed in a
# fresh database per script. Counted per check (the scripts print ok / not ok lines).
# shellcheck source=test/citus/cluster.sh
. "$WITN_RUN_ROOT/test/citus/cluster.sh"
section "Citus (test/citus/*.sh: 1 coordinator + 2 workers on 127.0.0.1, one fresh distributed database each)"
if ! witn_citus_available; then
    echo "    skipped: Citus is not installed in this PostgreSQL (.ci/run installs it first)"
    record citus 0 0 "skipped: Citus not installed"
elif ! { single_host=$PGHOST single_port=$PGPORT; witn_citus_start >"$LOGS/citus-start.log" 2>&1; }; then
    show_log "$LOGS/citus-start.log" 60
    record citus 0 1
    failed "citus: the cluster did not start"
else
    (
        for f in test/citus/*.sh; do
            name=$(basename "$f" .sh)
            [ "$name" = cluster ] && continue
            selected "$name" || continue
            db=$(dbname citus "$name")
            log=$LOGS/citus-$name.log
            t0=$SECONDS
            if witn_citus_db "$db" >"$log" 2>&1; then
                witn_run_bounded 900 "$log" env PGDATABASE="$db" WITN_CITUS_PORTS="${WITN_CITUS_PORTS[*]}" bash "$f"
                rc=$?
            else
                rc=1
            fi
            ok=$(grep -cE '^ok ' "$log")
            bad=$(grep -cE '^not ok ' "$log")
            if ((rc == 0 && bad == 0)); then
                printf '    ok     %-28s %d checks  (%ds)\n' "$name" "$ok" $((SECONDS - t0))
                grep -E '^# ' "$log" | head -n 20 | indent | indent
            else
                printf '    FAILED %-28s %d ok, %d not ok, exit %d  (%ds)\n' "$name" "$ok" "$bad" "$rc" $((SECONDS - t0))
                show_log "$log" 150 | indent
            fi
            echo "$name $ok $((bad + (rc != 0 && bad == 0)))" >>"$LOGS/citus-counts"
        done
    )
    while read -r name ok bad; do
        record citus "$ok" "$bad"
        ((bad)) && failed "citus: $name"
    done <"$LOGS/citus-counts"
    witn_citus_stop >/dev/null 2>&1
    export PGHOST=$single_host PGPORT=$single_port
fi

# ---- documentation ---------------------------------------------------------------------------
# Every code block of the pages, on a cluster of its own (test/docs/doc_blocks.py says how).
section "documentation (test/docs/run.sh: every code block run, the output shown compared)"
witn_run_bounded 300 "$LOGS/docs.log" env WITN_PORT_BASE=56400 bash test/docs/run.sh
rc=$?
ok=$(grep -cE '^ok ' "$LOGS/docs.log")
bad=$(grep -cE '^not ok ' "$LOGS/docs.log")
skipped=$(grep -cE '^skip ' "$LOGS/docs.log")
grep -E '^# [^ ]' "$LOGS/docs.log" | indent
if ((rc != 0 || bad != 0)); then
    grep -vE '^(ok|skip) |^# [^ ]' "$LOGS/docs.log" | head -n 300 | indent
    sed -n 's/^not ok */docs: /p' "$LOGS/docs.log" >"$LOGS/docs.failed"
    while read -r l; do failed "$l"; done <"$LOGS/docs.failed"
fi
record docs "$ok" "$((bad + (rc != 0 && bad == 0)))" "$skipped blocks skipped"

# The cluster is not needed any more (fuzzing runs without it).
if [ -n "$WITN_CLUSTER_DIR" ]; then
    section "stopping the cluster"
    witn_cluster_stop >"$LOGS/stop.log" 2>&1
    indent <"$LOGS/stop.log"
fi

# ---- fuzzing ------------------------------------------------------------------------------------
section "fuzzing (libFuzzer + ASan + UBSan, make fuzz FUZZ_SECONDS=$FUZZ_SECONDS)"
if [ "${WITN_SKIP_FUZZ:-0}" = 1 ]; then
    echo "    skipped (WITN_SKIP_FUZZ=1)"
    record fuzz 0 0 "skipped (WITN_SKIP_FUZZ=1)"
elif ! ls test/fuzz/*_fuzz.cpp >/dev/null 2>&1; then
    echo "    no fuzz targets (test/fuzz/*_fuzz.cpp)"
    record fuzz 0 0 "no fuzz targets"
else
    marker=$LOGS/fuzz.start
    touch "$marker"
    if ! witn_run_bounded 900 "$LOGS/fuzz.log" ${WITN_LOCK[@]+"${WITN_LOCK[@]}"} make -j2 fuzz-build PG_CONFIG="$WITN_PG_CONFIG"; then
        echo "    the fuzz targets did not build:"
        show_log "$LOGS/fuzz.log" 60
        record fuzz 0 1
        failed "fuzz: targets did not build"
    else
        witn_run_bounded $((FUZZ_SECONDS + 300)) "$LOGS/fuzz.log" make fuzz FUZZ_SECONDS="$FUZZ_SECONDS" PG_CONFIG="$WITN_PG_CONFIG"
        rc=$?
        # make fuzz runs the targets one after the other, in name order.
        mapfile -t targets < <(for t in test/fuzz/*_fuzz.cpp; do basename "$t" .cpp; done | LC_ALL=C sort)
        i=0
        while read -r line; do
            printf '    %-20s %s\n' "${targets[$i]:-?}" "$line"
            i=$((i + 1))
        done < <(grep -E '^Done [0-9]+ runs' "$LOGS/fuzz.log")
        if ((rc == 0)) && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY: [A-Za-z]*Sanitizer|deadly signal' "$LOGS/fuzz.log"; then
            record fuzz 1 0
        else
            echo "    fuzzing FAILED (exit $rc):"
            grep -nE -A30 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|deadly signal' "$LOGS/fuzz.log" | head -n 80 | indent
            echo "    ---- end of the fuzz log ----"
            tail -n 30 "$LOGS/fuzz.log" | indent
            artifacts=$(find . -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) -newer "$marker" 2>/dev/null)
            [ -n "$artifacts" ] && echo "    reproducers: $artifacts (run the target with the file as argument)"
            record fuzz 0 1
            failed "fuzz: crash, leak or sanitizer report (exit $rc)"
        fi
    fi
fi

# ---- benchmark smoke ----------------------------------------------------------------------------
# bench_smoke NAME WHAT PATTERN [VAR=VALUE...]: test/bench/NAME.sh --smoke (its own cluster),
# counted as one bench test; shows the lines of its figures that match PATTERN ("# " dropped).
bench_smoke() {
    local name=$1 what=$2 pattern=$3 log=$LOGS/bench-$1.log
    shift 3
    if witn_run_bounded 300 "$log" env "$@" bash "test/bench/$name.sh" --smoke; then
        echo "    $what benchmark (test/bench/$name.sh --smoke): checks passed; smoke figures:"
        grep -E "$pattern" "$log" | sed 's/^# //' | indent
        record bench 1 0
    else
        echo "    the $what benchmark smoke run FAILED:"
        show_log "$log" 60
        record bench 0 1
        failed "bench: test/bench/$name.sh --smoke failed"
    fi
}
# The figures of a 1/100-scale run mean little; what counts is that every scenario runs and that
# the benchmark's checks hold (naive and witn agree, verify() is empty, everything due settles).
section "benchmark smoke (test/bench/run.sh --smoke, its own cluster)"
if [ "${WITN_SKIP_BENCH:-0}" = 1 ]; then
    echo "    skipped (WITN_SKIP_BENCH=1)"
    record bench 0 0 "skipped (WITN_SKIP_BENCH=1)"
elif [ "$(id -u)" != 0 ]; then
    echo "    skipped: the benchmark runs its cluster as postgres and needs root"
    record bench 0 0 "skipped (not root)"
else
    if witn_run_bounded 600 "$LOGS/bench.log" bash test/bench/run.sh --smoke --out "$LOGS/bench"; then
        echo "    checks passed; figures at 1/100 scale are not the targets' measure (docs/performance.md):"
        grep -E '^checks:|^ {8}(settled|ref outcomes)|^  \([a-f]\)' "$LOGS/bench.log" | indent
        record bench 1 0
    else
        echo "    the benchmark smoke run FAILED:"
        show_log "$LOGS/bench.log" 60
        record bench 0 1
        failed "bench: test/bench/run.sh --smoke failed"
    fi
    # Credits and reversals against a plain-SQL baseline; webhook delivery (settlement with an
    # endpoint, a backlog's drain, ingestion while it drains); what-if (witn.simulate over a
    # settled history); retention (witn.purge_events alone and while events are ingested).
    bench_smoke corrections corrections '^(credits|reversals):'
    bench_smoke webhooks webhook '^# ' WITN_PORT_BASE=55432
    bench_smoke simulate what-if '^(history|simulate|draft)'
    bench_smoke retention retention '^(history|purge|ingestion|CPU|witn.events:)'
    # The Citus benchmark (a cluster of its own against a single node), when Citus is there.
    if ! witn_citus_available; then
        echo "    Citus benchmark skipped: Citus is not installed"
    elif witn_run_bounded 600 "$LOGS/bench-citus.log" bash test/bench/citus.sh --smoke --out "$LOGS/bench-citus"; then
        echo "    Citus benchmark (test/bench/citus.sh --smoke): checks passed; smoke figures:"
        grep -E '^(ingest|settlement|added)' "$LOGS/bench-citus/results.txt" | indent
        record bench 1 0
    else
        echo "    the Citus benchmark smoke run FAILED:"
        show_log "$LOGS/bench-citus.log" 60
        record bench 0 1
        failed "bench: test/bench/citus.sh --smoke failed"
    fi
fi

# ---- the end ------------------------------------------------------------------------------------
summary
