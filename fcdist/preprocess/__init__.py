"""Preprocessing: validate, split, render, tokenize with loss masks, and pack into Arrow shards."""
