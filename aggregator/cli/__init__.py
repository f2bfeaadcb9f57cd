"""The command line: ``main`` (the parser and the entry point), ``common`` (shared options and
helpers) and one module per command group; each handler makes one library call and prints."""
