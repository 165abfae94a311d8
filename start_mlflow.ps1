# Start the MLflow UI over this project's tracking store on 127.0.0.1:5000 (Windows PowerShell).
# $env:MLFLOW_PORT changes the port; $env:MLFLOW_BACKEND_STORE_URI (else $env:MLFLOW_TRACKING_URI) the store
# (default sqlite:///mlflow.db); $env:MLFLOW_ARTIFACTS_DESTINATION where a team server keeps artifacts.
$ErrorActionPreference = "Stop"
Set-Location -Path $PSScriptRoot
$hostAddr = "127.0.0.1"
$port = if ($env:MLFLOW_PORT) { [int]$env:MLFLOW_PORT } else { 5000 }
$store = if ($env:MLFLOW_BACKEND_STORE_URI) { $env:MLFLOW_BACKEND_STORE_URI } elseif ($env:MLFLOW_TRACKING_URI) { $env:MLFLOW_TRACKING_URI } else { "sqlite:///mlflow.db" }
$python = if (Test-Path ".venv\Scripts\python.exe") { ".venv\Scripts\python.exe" } else { "python" }

& $python -c "import mlflow" 2>$null
if ($LASTEXITCODE -ne 0) {
    Write-Error "start_mlflow: mlflow is not installed: run 'pip install -e .' (or 'make install') first"
    exit 2
}
$listener = $null
try {
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Parse($hostAddr), $port)
    $listener.Start()
} catch {
    Write-Error "start_mlflow: port $port on $hostAddr is already in use (another MLflow UI?); set MLFLOW_PORT to another port"
    exit 1
} finally {
    if ($listener) { $listener.Stop() }
}
$shown = $store -replace '(://[^:/@]+):[^@]*@', '$1:***@'
Write-Host "MLflow UI: http://${hostAddr}:$port  (store: $shown; Ctrl-C stops it)"
$extra = @()
if ($env:MLFLOW_ARTIFACTS_DESTINATION) { $extra = @("--artifacts-destination", $env:MLFLOW_ARTIFACTS_DESTINATION) }
& $python -m mlflow server --backend-store-uri $store --host $hostAddr --port $port --workers 1 @extra
