"""The editor's sources.yaml: ``reader`` (a YAML 1.2 reader that keeps every line and column),
``load`` (the schema and its checks, errors with file:line:column), ``edit`` (in-place edits that
keep comments and layout) and ``opml`` (feed readers' subscription lists)."""
