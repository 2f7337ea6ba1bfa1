"""Models, on plain arguments for every stage: load.py loads pretrained models (the base training starts from,
the model inference runs, the base gather merges into) and adapters; quant.py makes a base 4-bit (QLoRA) and its
dequantized copy; lora.py puts LoRA adapters on a base; tiny.py builds the tiny test model. Where a model runs
and its tokenizer loads is fcdist.runtime; training's choices for its model are fcdist.train.model."""
