"""fcdist: fine-tune language models for function calling, from one CPU to many SLURM nodes.

Pipeline stages, one subpackage or module each: data (synth, load, render) -> preprocess (tokenize + pack)
-> train -> gather -> infer -> score.
"""

__version__ = "0.1.0"
