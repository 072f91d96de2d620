def main() -> None:
    raise SystemExit("sandbox not built yet")
