"""Training: packed shards in, checkpoints out (``fcdist train``; see trainer.py for the run folder layout).

- model.py: what this job runs on (device, dtype and attention by fcdist.runtime's rules), refusals, base loading, 4-bit quantization, LoRA, document-isolation check
- data.py: the packed shards in a seeded order, and the collator that keeps packed documents apart
- metrics.py: throughput, MFU, packing and memory metrics, metrics.jsonl and loss.png
- lock.py: one job per run folder (runs/<name>/LOCK, a heartbeat, dead holders taken over)
- launcher.py: launched workers die with their launcher instead of training on as orphans
- trainer.py: the stage, ``train(config) -> Path`` and ``main(argv)``
"""
