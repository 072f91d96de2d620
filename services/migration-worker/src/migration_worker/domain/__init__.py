"""Pure domain: the plan model, SQL generation from it, accounting rules. No I/O here."""
