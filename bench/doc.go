// Package bench holds Keybrake's benchmarks: the Go micro-benchmarks of the
// gate in this directory (go test -bench . ./bench/), a fake Stripe upstream
// (bench/upstream) and an HTTP load generator (bench/load) driven by
// scripts/bench.sh (make bench). See BENCHMARKS.md.
package bench
