#!/usr/bin/env bash
# Start local Kafka + FerretDB once (fresh ports and data), run the given command with
# KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI set, then stop both, whatever the command's outcome.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=$(mktemp -d "${TMPDIR:-/tmp}/mentorship-infra-XXXXXX")
cleanup() { python3 "$here/infra.py" down --state-dir "$state" >/dev/null 2>&1 || true; rm -rf "$state"; }
trap cleanup EXIT INT TERM
python3 "$here/infra.py" up --state-dir "$state"
KAFKA_BOOTSTRAP_SERVERS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["kafka_bootstrap"])' "$state/infra.json")
MONGODB_URI=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mongodb_uri"])' "$state/infra.json")
export KAFKA_BOOTSTRAP_SERVERS MONGODB_URI
"$@"
