"""The tiny test model (tiny.py); where a real model runs and its tokenizer loads is fcdist.runtime."""
