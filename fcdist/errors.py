"""The exception type (with its subclasses) for problems the user can fix (a bad file, key or row, a model
folder without a tokenizer, a full disk): ``fcdist.cli.main`` reports it as ``fcdist <stage>: error: <message>``,
one line without a traceback, and exits 1. Its message names the file, key or row."""

from __future__ import annotations


class InputError(ValueError):
    """A user-fixable problem; the message is one line naming the file, key or row."""


class SetupError(InputError):
    """A setup that cannot train (settings, hardware or inputs); the message names what to change. Here, not in
    fcdist.train, because the model layer refuses some settings too (LoRA targets the model lacks)."""
