"""Model builders: the tiny test model, and loading the real one."""
