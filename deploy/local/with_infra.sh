#!/usr/bin/env bash
# Start local Kafka + FerretDB once (fresh ports and data), run the given command with
# KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI set, then stop both, whatever the command's outcome.
#
#   with_infra.sh [--service-stores] COMMAND...
#
# --service-stores: production's shape, one more FerretDB process per service, each its own
# store, exported as <SERVICE>_MONGODB_URI (PROFILE_MONGODB_URI, ...) next to MONGODB_URI
# (the default store). `make bench` and `make run` use it; `make test` keeps one store (tests
# isolate by database name, and each database has its own write lock in the patched FerretDB).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
services="profile,matching,scheduling,notification,insights"
stores=""
if [ "${1:-}" = "--service-stores" ]; then
    stores=$services
    shift
fi
state=$(mktemp -d "${TMPDIR:-/tmp}/mentorship-infra-XXXXXX")
cleanup() { python3 "$here/infra.py" down --state-dir "$state" >/dev/null 2>&1 || true; rm -rf "$state"; }
trap cleanup EXIT INT TERM
python3 "$here/infra.py" up --state-dir "$state" --stores "$stores"
# KAFKA_BOOTSTRAP_SERVERS, MONGODB_URI and, with --service-stores, PROFILE_MONGODB_URI ... from infra.json
eval "$(python3 - "$state/infra.json" <<'PY'
import json, shlex, sys
info = json.load(open(sys.argv[1]))
print(f"export KAFKA_BOOTSTRAP_SERVERS={shlex.quote(info['kafka_bootstrap'])}")
print(f"export MONGODB_URI={shlex.quote(info['mongodb_uri'])}")
for name, uri in info.get("mongodb_uris", {}).items():
    print(f"export {name.upper()}_MONGODB_URI={shlex.quote(uri)}")
PY
)"
"$@"
