"""LLM rankers (asLLR, HPRO). Importing this package registers them.

Modules: ``prompt`` (lead -> hierarchical prompt within a token budget),
``summarizer`` (shortens long transcripts), ``backbones`` (local causal LMs),
``model`` (LoRA backbone + named heads), ``losses`` (named weighted terms),
``sampler`` (training batches), ``trainer`` (accelerate loop, inference),
``scoring`` (rules from outputs to scores), ``ranker`` (the pipeline),
``methods`` (registered methods), ``hpro`` (HPRO pairs, loss, tier sampler, method),
``h_text`` (the ``asllr`` embedding provider).
"""

from llm_ranker import h_text, hpro, methods  # noqa: F401  (registration side effects)
