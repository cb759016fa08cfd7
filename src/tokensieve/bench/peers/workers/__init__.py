"""The peers' workers: standalone scripts each venv's own python runs. They sit apart from the adapters, whose
module names (kvpress, llmlingua, venv) would shadow the real packages on a script's path."""
