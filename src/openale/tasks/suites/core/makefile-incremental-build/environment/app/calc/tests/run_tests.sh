#!/bin/bash
# Usage: tests/run_tests.sh [APP]   (run from the project directory)
app=${1:-build/app}
fail=0
for input in tests/cases/*.in; do
    expected="${input%.in}.out"
    if diff -u "$expected" <("$app" < "$input"); then
        echo "ok   $input"
    else
        echo "FAIL $input"
        fail=1
    fi
done
exit $fail
