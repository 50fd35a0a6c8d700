#!/usr/bin/env bash
# Fuzzes the HTTP/JSON face of a real server with schemathesis, driven by
# the OpenAPI document the server serves (/v1/openapi.json): every
# operation, its coverage, fuzzing and stateful phases (an Evaluate's
# decision id fed to ReportOutcome), all checks on — no 5xx, answers that
# conform to the schema, only documented status codes, schema-invalid
# bodies refused, 405 with Allow for other methods.
#
# One check is off: positive_data_acceptance ("a schema-valid body must get
# a 2xx"). The service validates more than JSON Schema can say — a
# timestamp within -1 h .. +5 min of the server's clock, a decision id
# signed by this deployment, byte (not character) lengths — and answers
# those bodies 400 naming the field, as it should.
#
# Usage: tests/http/fuzz.sh [path/to/riskgate] [examples per operation]
set -euo pipefail
bin=${1:-target/debug/riskgate}
examples=${2:-200}
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
work=$(mktemp -d)
"$bin" serve --listen "127.0.0.1:$port" --metrics-listen off --journal off >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
ready() {
  python3 - "$port" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}
for _ in $(seq 100); do ready && break; sleep 0.1; done
ready || { echo "the server did not become ready:"; cat "$log"; exit 1; }
cd "$work"
python3 -m schemathesis.cli run "http://127.0.0.1:$port/v1/openapi.json" \
  --checks all --exclude-checks positive_data_acceptance \
  --max-examples "$examples" --seed 1 --generation-database none --no-color
# The server is still up and logged no panic.
ready || { echo "the server stopped answering:"; cat "$log"; exit 1; }
if grep -qi panic "$log"; then
  echo "the server panicked:"; cat "$log"; exit 1
fi
echo "schemathesis: no issues; the server is still ready"
