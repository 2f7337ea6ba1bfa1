"""Training: packed shards in, checkpoints out (``fcdist train``; see trainer.py for the run folder layout).

- model.py: runtime detection, refusals, base loading, 4-bit quantization, LoRA, document-isolation check
- data.py: the packed shards in a seeded order, and the collator that keeps packed documents apart
- metrics.py: throughput, MFU, packing and memory metrics, metrics.jsonl and loss.png
- trainer.py: the stage, ``train(config) -> Path`` and ``main(argv)``
"""
