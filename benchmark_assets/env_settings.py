"""Settings read from the environment, checked where they are read: a bad value is one line that
names the variable, what it means and a value that works."""
from __future__ import annotations

import os


def whole_number(name: str, default: int, *, meaning: str, example: int, minimum: int = 1) -> int:
    """``$name`` as a whole number of at least ``minimum``, or ``default`` when it is unset or empty."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"${name}={text!r} is not a whole number; set it to {meaning}, e.g. {example}") from None
    if value < minimum:
        raise ValueError(f"${name}={value} must be at least {minimum}; set it to {meaning}, e.g. {example}")
    return value
