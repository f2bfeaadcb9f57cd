"""The offline demo: ``content`` (fictional outlets as data) and ``server`` (serves them on
127.0.0.1 and writes the sources.yaml that crawls them)."""
