"""Models: load.py loads pretrained models and adapters for gather and inference; tiny.py builds the tiny test
model. Where a model runs and its tokenizer loads is fcdist.runtime; training's own loading is fcdist.train.model."""
