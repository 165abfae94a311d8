#!/usr/bin/env bash
# Start the MLflow UI over this project's tracking store on 127.0.0.1:5000 (MLFLOW_PORT changes the port).
# The store is $MLFLOW_TRACKING_URI when set, else sqlite:///mlflow.db in the project folder.
set -euo pipefail
cd "$(dirname "$0")"
host="127.0.0.1"
port="${MLFLOW_PORT:-5000}"
store="${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db}"
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
echo "MLflow UI: http://$host:$port  (store: $store; Ctrl-C stops it)"
exec "$py" -m mlflow ui --backend-store-uri "$store" --host "$host" --port "$port"
