"""LLM rankers (asLLR, HPRO). Importing this package registers them."""
