"""Story -> cited summary. ``summariser`` decides (LLM or extractive, reuse when unchanged);
``extractive`` is the offline summary; ``prompt`` builds what the model reads; ``checks`` vets
what it answers; ``llm`` is the OpenAI-compatible client (the only module importing openai)."""
