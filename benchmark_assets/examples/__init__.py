"""Small runnable examples for studies (numpy and the standard library only)."""
