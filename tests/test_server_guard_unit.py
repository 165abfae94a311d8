"""The request guard's pure parts: nesting depth and one-line messages."""

from __future__ import annotations

from arritmias.server_guard import json_depth, one_line


def test_json_depth_counts_brackets():
    assert json_depth(b'{"instances": [{"sig": [0.1, 0.2], "rr": [0.8, 0.8, 1.0]}]}') == 4
    assert json_depth(b"[" * 100 + b"]" * 100) == 100
    assert json_depth(b"") == 0 and json_depth(b"12") == 0


def test_one_line_drops_mlflows_request_dump():
    dumped = "Failed to predict data '{'sig': array([[0.1, ...]])}'. \nError: sig of beat 0: expected 360 numbers"
    assert one_line(dumped) == "sig of beat 0: expected 360 numbers"
    assert one_line("Invalid input. Error: x\nInput: \nb'not json'\n") == "Invalid input. Error: x"
    assert one_line("") == "bad request"
