"""The orders domain: pure rules, no I/O."""
