"""The README's promise to a new user: two commands first, the second the one CI runs first, the slower tier named."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLOW_TIER = '.venv/bin/pytest -q -m "slow or peers"'


def _commands(block: str) -> list[str]:
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def test_readme_starts_with_two_commands_and_ci_runs_the_second_first():
    text = (ROOT / "README.md").read_text()
    assert text.startswith("```bash\n"), "the README must open with its commands"
    first_block = text.split("```")[1].removeprefix("bash\n")
    commands = _commands(first_block)
    assert len(commands) == 2, commands
    assert commands[0].startswith("bash scripts/setup.sh && ") and commands[1].startswith("bash scripts/setup.sh && ")
    ci = [c for c in _commands((ROOT / ".ci" / "run").read_text()) if not c.startswith(("set ", "cd "))]
    assert ci[0] == commands[1], (ci[0], commands[1])


def test_the_slower_tier_is_named_in_the_readme_and_run_by_ci():
    readme = (ROOT / "README.md").read_text()
    assert sum(SLOW_TIER in line for line in readme.splitlines()) == 1
    assert SLOW_TIER in _commands((ROOT / ".ci" / "run").read_text())
