#!/usr/bin/env bash
# Start the MLflow UI/tracking server on 127.0.0.1:5000 (MLFLOW_PORT changes the port, MLFLOW_HOST the address).
# Alone: over this project's store, $MLFLOW_TRACKING_URI when it is a database, else sqlite:///mlflow.db.
# For a team (README, "Team and cluster"): MLFLOW_BACKEND_STORE_URI=postgresql://user:pw@db/mlflow and
# MLFLOW_ARTIFACTS_DESTINATION=/srv/mlflow-artifacts (or s3://bucket/path); the server then stores and serves
# every artifact, and clients only need MLFLOW_TRACKING_URI=http://this-host:port.
set -euo pipefail
cd "$(dirname "$0")"
host="${MLFLOW_HOST:-127.0.0.1}"
port="${MLFLOW_PORT:-5000}"
store="${MLFLOW_BACKEND_STORE_URI:-${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db}}"
case "$store" in
  http://*|https://*)
    echo "start_mlflow: MLFLOW_TRACKING_URI=$store is a server address, not a store: set MLFLOW_BACKEND_STORE_URI" >&2
    exit 2 ;;
esac
extra=()
if [ -n "${MLFLOW_ARTIFACTS_DESTINATION:-}" ]; then
  extra=(--artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION")
fi
py=".venv/bin/python"
[ -x "$py" ] || py="$(command -v python3)"
# MLflow starts its web server by name: the interpreter's bin folder must come first on PATH.
PATH="$(dirname "$py"):$PATH"
export PATH
if ! "$py" -c "import mlflow" 2>/dev/null; then
  echo "start_mlflow: mlflow is not installed: run 'make install' first" >&2
  exit 2
fi
if ! "$py" -c 'import socket, sys; socket.socket().bind((sys.argv[1], int(sys.argv[2])))' "$host" "$port" 2>/dev/null; then
  echo "start_mlflow: port $port on $host is already in use (another MLflow UI?); set MLFLOW_PORT to another port" >&2
  exit 1
fi
# sqlite takes one writer at a time: one worker process; a PostgreSQL store serves a team with four.
case "$store" in sqlite:*) workers="${MLFLOW_WORKERS:-1}" ;; *) workers="${MLFLOW_WORKERS:-4}" ;; esac
shown="$(printf '%s' "$store" | sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#')"  # never print a password
echo "MLflow UI: http://$host:$port  (store: $shown; Ctrl-C stops it)"
exec "$py" -m mlflow server --backend-store-uri "$store" --host "$host" --port "$port" --workers "$workers" \
  ${extra[@]+"${extra[@]}"}
