"""A target whose module raises while it is imported (for the malformed-input corpus)."""
raise RuntimeError("this module is broken on purpose")
