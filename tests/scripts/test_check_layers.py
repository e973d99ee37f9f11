"""scripts/check-layers.py passes on shared/src, and fails on trees with a planted file-level
import circle or an import against the layers: a checker that cannot fail proves nothing."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT / "scripts" / "check-layers.py"


def run(*args):
    return subprocess.run([sys.executable, str(CHECKER), *args], capture_output=True, text=True)


def plant(root: Path, files: dict[str, str]) -> Path:
    src = root / "src"
    for name, text in files.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return src


# A small crate shaped like shared/src, which imports one way.
CLEAN = {
    "lib.rs": "pub mod domain;\npub mod store;\npub mod http;\n",
    "domain/mod.rs": "mod ids;\npub use ids::AccountId;\n",
    "domain/ids.rs": "pub struct AccountId;\n",
    "store/mod.rs": "pub mod error;\nuse crate::domain::AccountId;\n",
    "store/error.rs": "pub enum StoreError {}\n",
    "http/mod.rs": "pub mod error;\npub mod request;\npub mod response;\n",
    "http/error.rs": "use crate::store::error::StoreError;\npub struct ApiError;\n",
    "http/request.rs": "use super::error::ApiError;\n",
    "http/response.rs": "use super::{error::ApiError, request};\n"
    "#[cfg(test)]\nmod tests {\n    use crate::http::response;\n}\n",
}


def test_shared_src_imports_one_way():
    result = run()
    assert result.returncode == 0, result.stderr
    assert "no import circle" in result.stdout


def test_a_clean_tree_passes(tmp_path):
    result = run("--src", str(plant(tmp_path, CLEAN)))
    assert result.returncode == 0, result.stderr


def test_a_planted_file_circle_is_named(tmp_path):
    # error.rs reaches back to response.rs through a grouped `super::` import: the circle
    # error -> response -> error lies inside one folder, which a module-level check misses.
    circle = dict(CLEAN)
    circle["http/error.rs"] = (
        "use crate::store::error::StoreError;\nuse super::{response::{self}};\npub struct ApiError;\n"
    )
    result = run("--src", str(plant(tmp_path, circle)))
    assert result.returncode == 1
    assert "import circle between http/error.rs, http/request.rs, http/response.rs" in result.stderr


def test_a_circle_through_an_inline_path_is_named(tmp_path):
    circle = dict(CLEAN)
    circle["http/request.rs"] = (
        "use super::error::ApiError;\nfn f() { let _ = crate::http::response::render(); }\n"
    )
    circle["http/response.rs"] = "use super::request;\npub fn render() {}\n"
    result = run("--src", str(plant(tmp_path, circle)))
    assert result.returncode == 1
    assert "import circle between http/request.rs, http/response.rs" in result.stderr


def test_an_import_against_the_layers_is_named(tmp_path):
    upward = dict(CLEAN)
    upward["domain/ids.rs"] = "use crate::store::error::StoreError;\npub struct AccountId;\n"
    result = run("--src", str(plant(tmp_path, upward)))
    assert result.returncode == 1
    assert "domain/ids.rs: domain imports crate::store::error" in result.stderr


def test_a_module_outside_the_layers_is_named(tmp_path):
    stray = dict(CLEAN)
    stray["extras.rs"] = "pub fn f() {}\n"
    result = run("--src", str(plant(tmp_path, stray)))
    assert result.returncode == 1
    assert "module 'extras' has no place in the layers" in result.stderr
