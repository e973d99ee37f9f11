"""scripts/check-doc-links.py passes on the repository, and fails on a tree with a broken
link planted in it: a checker that cannot fail proves nothing."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT / "scripts" / "check-doc-links.py"


def run(*args):
    return subprocess.run([sys.executable, str(CHECKER), *args], capture_output=True, text=True)


def plant(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


README = "# Demo\n\n`make dev` serves it, `make test` tests it; see [the guide](docs/guide.md#usage).\n"


def test_repository_links_are_whole():
    result = run()
    assert result.returncode == 0, result.stderr
    assert "links checked" in result.stdout


def test_planted_broken_file_link_and_anchor_are_named(tmp_path):
    plant(tmp_path, {
        "README.md": README,
        "docs/guide.md": (
            "# Guide\n\n## Usage\n\n## Usage\n\n"
            "Fine: [up](../README.md), [here](#usage-1), [folder](.), [web](https://example.com).\n"
            "Broken file: [setup](setup.md).\n"
            "Broken anchor: [limits](../README.md#rate-limits).\n"
            "```sh\n[not a link](in-a-fence.md)\n```\n"
            "Nor is `[this](in-code.md)`.\n"
        ),
    })
    result = run("--root", str(tmp_path))
    assert result.returncode == 1, result.stdout
    problems = result.stderr.splitlines()[:-1]
    assert problems == [
        "docs/guide.md:8: setup.md (no such file or directory)",
        "docs/guide.md:9: ../README.md#rate-limits (no heading #rate-limits in README.md)",
    ], result.stderr


def test_readme_must_name_both_commands(tmp_path):
    plant(tmp_path, {"README.md": "# Demo\n\nRun `make dev`.\n", "docs/guide.md": "# Guide\n\n## Usage\n"})
    result = run("--root", str(tmp_path))
    assert result.returncode == 1
    assert "README.md: does not say `make test`" in result.stderr
