"""The configuration tables of the built-in agents, one module per family.

Each module holds ``SCHEMAS`` (agent type -> its keys) and ``CHECKS`` (agent type -> a check of
the whole configuration, for rules one key cannot express); ``builtin_config`` merges them.
"""
