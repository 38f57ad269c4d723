"""README: the two set-up commands come first, and CI runs exactly its test command."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_first_two_commands_install_demo_and_test() -> None:
    first, second = code_blocks("bash")[:2]
    assert first.strip() == "pip install . && msal-async demo"
    assert "[test]" in second
    assert "pytest" in second


def test_ci_runs_the_readme_test_command() -> None:
    test_command = code_blocks("bash")[1].strip()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci


def test_python_examples_parse() -> None:
    for block in code_blocks("python"):
        ast.parse(block)
