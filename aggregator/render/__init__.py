"""Stories -> the published site: ``views`` (what templates see), ``pages`` (the site as files),
``feeds`` (feed content), ``publish`` (the atomic swap). Templates live in ``templates/``."""
