"""The Prometheus side of live monitoring: the configuration loads and every alert rule passes its promtool unit
tests (monitoring/prometheus/alerts_test.yml: each rule fires on the series that should fire it, in time, and
stays quiet on healthy ones)."""

from __future__ import annotations

import subprocess

from tests.conftest import ROOT, need_binary

PROM = ROOT / "monitoring" / "prometheus"


def test_prometheus_config_and_rules_are_valid():
    promtool = need_binary("promtool")
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"]):
        proc = subprocess.run([promtool, *args], cwd=PROM, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_rule_passes_its_unit_tests():
    promtool = need_binary("promtool")
    proc = subprocess.run([promtool, "test", "rules", "alerts_test.yml"], cwd=PROM, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tested = {line.split("alertname:")[1].strip() for line in (PROM / "alerts_test.yml").read_text().splitlines()
              if "alertname:" in line}
    defined = {line.split("alert:")[1].strip() for line in (PROM / "alerts.yml").read_text().splitlines()
               if line.strip().startswith("- alert:")}
    assert defined and defined == tested  # no rule without a test
