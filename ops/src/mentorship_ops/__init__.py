"""Operator and demo tooling: status, dead letters, replay, tokens, event catalog, demo."""
