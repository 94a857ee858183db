"""Release gate: pure decision logic (`decision`) and its HTML/JSON report (`report`)."""
