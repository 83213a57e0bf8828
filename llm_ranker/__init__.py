"""LLM rankers (asLLR, HPRO). Importing this package registers them (the benchmark imports it
through the ``leadrank.methods`` entry point; ``llm_ranker.h_text`` through ``leadrank.embeddings``).

Modules: ``prompt`` (lead -> hierarchical prompt within a token budget),
``summarizer`` (shortens long transcripts), ``backbones`` (local causal LMs),
``model`` (LoRA backbone + named heads), ``losses`` (named weighted terms),
``pairs`` (the ``hpro:`` settings, funnel tiers, preference pairs),
``sampler`` (training batches: the tier-aware sampler every LLM row shares, so
w/o and w/ HPRO see the same batches), ``trainer`` (accelerate loop, inference),
``scoring`` (rules from outputs to scores), ``ranker`` (the pipeline),
``methods`` (the asLLR method), ``hpro`` (the HPRO loss term and method),
``h_text`` (the ``asllr`` embedding provider); ``variants.yaml`` declares the
paper's rows and the HPRO ablations.
"""

from pathlib import Path

import leadrank_api
from llm_ranker import hpro, methods  # noqa: F401  (registration side effects)

leadrank_api.register_variants_file(Path(__file__).with_name("variants.yaml"))
