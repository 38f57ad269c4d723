"""msal-async demo: the end-to-end tour against the embedded emulator."""

from __future__ import annotations

import argparse

import pytest

from msal_async._cli import _parser, main
from msal_async.testing import DEMO_CLIENT_SECRET


def test_demo_runs_end_to_end_and_prints_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--concurrency", "50"]) == 0
    out = capsys.readouterr().out
    assert "identity_provider" in out
    assert "cache" in out
    assert "50 concurrent calls for a new scope sent 1 token request" in out
    assert DEMO_CLIENT_SECRET not in out


def test_demo_on_trio(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--backend", "trio", "--concurrency", "5"]) == 0
    assert "sent 1 token request" in capsys.readouterr().out


def test_demo_rejects_bad_concurrency(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--concurrency", "0"]) == 2
    assert capsys.readouterr().err == "msal-async demo: --concurrency must be at least 1\n"


@pytest.mark.parametrize(
    "command", [[], ["token"], ["serve-authority"], ["cache"], ["cache", "list"], ["demo"]]
)
def test_help_shows_no_rest_markup(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text
    assert ":class:" not in text


def test_every_option_and_command_has_help_text() -> None:
    def check(parser: argparse.ArgumentParser) -> int:
        seen = 0
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    assert any(c.dest == name for c in action._choices_actions), name
                    seen += check(sub)
            else:
                assert action.help, f"{parser.prog} {action.option_strings or action.dest}"
                seen += 1
        return seen

    assert check(_parser()) > 25
