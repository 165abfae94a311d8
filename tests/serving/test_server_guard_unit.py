"""The request guard's pure part: one-line messages."""

from __future__ import annotations

from arritmias.serving.guard import one_line


def test_one_line_drops_mlflows_request_dump():
    dumped = "Failed to predict data '{'sig': array([[0.1, ...]])}'. \nError: sig of beat 0: expected 360 numbers"
    assert one_line(dumped) == "sig of beat 0: expected 360 numbers"
    assert one_line("Invalid input. Error: x\nInput: \nb'not json'\n") == "Invalid input. Error: x"
    assert one_line("") == "bad request"
