#!/usr/bin/env bash
# Change-bus publish throughput (not in CI): encode + publish with acknowledgements of 200,000
# sysbench-like row events to a throwaway NATS JetStream server and a throwaway tansu Kafka
# broker (both started by the benchmark on loopback ports), in both formats. Prints row
# events/s and the publisher's peak RSS. Extra arguments go to the example
# (--events N, --batch N, --bus nats|kafka|both, --format json|avro|both).
set -euo pipefail
cd "$(dirname "$0")/.."
flock /tmp/dts-cargo.lock cargo build --release -q -p dts-bus --example bus_publish
exec target/release/examples/bus_publish "$@"
