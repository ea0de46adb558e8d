#!/bin/bash
# fuzz-coverage.sh - executions and branch coverage per fuzz target
# (make fuzz-coverage).
#
#   fuzz-coverage.sh COV_BUILD FUZZ_BUILD TARGET...
#
# COV_BUILD/fuzz/fuzz_TARGET is a replay build with clang's source-based
# coverage (-fprofile-instr-generate -fcoverage-mapping). It replays the
# corpus the last `make fuzz` grew (FUZZ_BUILD/run/TARGET/corpus), or the
# seeds if there is none, plus fuzz/regress/TARGET; llvm-cov then reports
# branch coverage of the files the target is about ("focus") and of the
# whole library. Executions are libFuzzer's count from FUZZ_BUILD's last
# run (FUZZ_BUILD/run/TARGET/log), "-" if it has not run.
set -u -o pipefail

cov=$1
fuzzb=$2
shift 2
profdata=$(command -v llvm-profdata-14 || command -v llvm-profdata)
llvmcov=$(command -v llvm-cov-14 || command -v llvm-cov)
if [ -z "$profdata" ] || [ -z "$llvmcov" ]; then
    echo "fuzz-coverage: llvm-profdata/llvm-cov not found (Debian: llvm-14)" >&2
    exit 1
fi

# The sources each target exists to cover.
focus() {
    case $1 in
    record) echo libjs/record.c ;;
    rangeset) echo libjs/rangeset.c ;;
    catalog) echo libjs/catalog.c libjs/stream_config.c ;;
    stream_config) echo libjs/stream_config.c ;;
    consumer_state) echo libjs/consumer_state.c ;;
    consumer_config) echo libjs/consumer_config_file.c libjs/consumer_config.c ;;
    headers) echo libjs/headers.c ;;
    subject) echo libjs/subject.c ;;
    kv_key) echo libjs/kv.c ;;
    checkpoint) echo libjs/checkpoint.c ;;
    msgstore) echo libjs/msgstore*.c libjs/checkpoint.c libjs/record.c ;;
    *) echo libjs/*.c ;;
    esac
}

# "covered/total (pct%)" of branches from llvm-cov report's TOTAL line.
branches() {
    "$llvmcov" report "$1" -instr-profile="$2" "${@:3}" 2>/dev/null |
        awk '$1 == "TOTAL" { t = $(NF-2); m = $(NF-1);
             printf "%d/%d (%s)", t - m, t, $NF }'
}

mkdir -p "$cov/prof"
printf '%-16s %11s  %-20s %-22s %s\n' target execs "libFuzzer cov/ft" \
    "focus branches" "library branches"
for t in "$@"; do
    bin=$cov/fuzz/fuzz_$t
    dirs=()
    if [ -d "$fuzzb/run/$t/corpus" ]; then
        dirs+=("$fuzzb/run/$t/corpus")
    elif [ -d "fuzz/corpus/$t" ]; then
        dirs+=("fuzz/corpus/$t")
    fi
    [ -d "fuzz/regress/$t" ] && dirs+=("fuzz/regress/$t")
    rm -f "$cov/prof/$t".*
    LLVM_PROFILE_FILE="$cov/prof/$t.%p.profraw" "$bin" "${dirs[@]}" \
        >/dev/null 2>&1 || echo "fuzz-coverage: $t: replay failed" >&2
    "$profdata" merge -sparse "$cov/prof/$t".*.profraw -o "$cov/prof/$t.profdata"
    execs=-
    ftcov=-
    if [ -f "$fuzzb/run/$t/log" ]; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$fuzzb/run/$t/log" | tail -1)
        ftcov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$fuzzb/run/$t/log" | tail -1)
    fi
    # shellcheck disable=SC2046 # focus lists words on purpose
    printf '%-16s %11s  %-20s %-22s %s\n' "$t" "${execs:--}" "${ftcov:--}" \
        "$(branches "$bin" "$cov/prof/$t.profdata" $(focus "$t"))" \
        "$(branches "$bin" "$cov/prof/$t.profdata" libjs/*.c)"
done
