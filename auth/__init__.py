"""Authentication providers of the gateway: a token in, a principal out (docs/auth.md)."""
