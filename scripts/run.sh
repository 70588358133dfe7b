#!/usr/bin/env bash
# The README's run command: installs what is missing, builds the wasm runtime and serves the web app
# (with its bundled models) with the COOP/COEP headers that the threads build needs.
#   scripts/run.sh                       http://127.0.0.1:8080/
#   ANYBIT_ADDRESS=0.0.0.0 ANYBIT_PORT=9000 scripts/run.sh
# dist/ is a plain static site afterwards: any server that sends the two headers in Trunk.toml
# gets the threads build; any other still gets the single-thread one.
set -euo pipefail
cd "$(dirname "$0")/.."
ADDRESS=${ANYBIT_ADDRESS:-127.0.0.1}
PORT=${ANYBIT_PORT:-8080}

bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/build-wasm.sh

url_host=$ADDRESS
[ "$ADDRESS" = 0.0.0.0 ] && url_host=127.0.0.1
printf '\n==== anybit: serving the web app at  http://%s:%s/  (Ctrl-C stops)\n\n' "$url_host" "$PORT"
exec trunk serve --release --offline --address "$ADDRESS" --port "$PORT"
