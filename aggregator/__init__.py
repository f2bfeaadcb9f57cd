"""aggregator: a self-hosted, AI-curated news service."""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/aggregator-news/aggregator"
