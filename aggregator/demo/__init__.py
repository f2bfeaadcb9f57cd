"""The offline demo: ``content`` (fictional outlets as data), ``server`` (serves them on
127.0.0.1 and writes the sources.yaml that crawls them) and ``run`` (the whole pipeline on them)."""
