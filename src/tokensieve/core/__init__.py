"""Shared parts every method is composed from: budgets, selection, the evicting cache, the hooks."""
