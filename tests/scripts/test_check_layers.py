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


def test_a_circle_closed_through_a_re_export_is_named(tmp_path):
    # http/mod.rs re-exports ApiError from its child error.rs; response.rs takes it from
    # there (`super::ApiError`) while error.rs renders with response.rs: a circle between two
    # files that only shows once the re-export is followed to the file defining the name.
    circle = dict(CLEAN)
    circle["http/mod.rs"] = (
        "pub mod error;\npub mod request;\npub mod response;\npub use error::ApiError;\n"
    )
    circle["http/error.rs"] = (
        "use crate::store::error::StoreError;\nuse super::response::render;\npub struct ApiError;\n"
    )
    circle["http/response.rs"] = "use super::ApiError;\npub fn render() {}\n"
    result = run("--src", str(plant(tmp_path, circle)))
    assert result.returncode == 1
    assert "import circle between http/error.rs, http/response.rs" in result.stderr


def test_a_circle_closed_through_a_crate_path_re_export_is_named(tmp_path):
    # `crate::store::StoreError` is store/error.rs's, re-exported by store/mod.rs (grouped,
    # renamed on the way): items.rs imports it, and error.rs imports items.rs.
    circle = dict(CLEAN)
    circle["store/mod.rs"] = (
        "pub mod error;\npub mod items;\nuse crate::domain::AccountId;\n"
        "pub use error::{StoreError as Failure};\n"
    )
    circle["store/error.rs"] = "use super::items::Item;\npub enum StoreError {}\n"
    circle["store/items.rs"] = "pub struct Item(crate::store::Failure);\n"
    result = run("--src", str(plant(tmp_path, circle)))
    assert result.returncode == 1
    assert "import circle between store/error.rs, store/items.rs" in result.stderr


def test_a_re_export_without_a_circle_passes(tmp_path):
    through = dict(CLEAN)
    through["http/mod.rs"] = CLEAN["http/mod.rs"] + "pub use error::ApiError;\n"
    through["http/request.rs"] = "use super::ApiError;\nuse crate::domain::AccountId;\n"
    result = run("--src", str(plant(tmp_path, through)))
    assert result.returncode == 0, result.stderr


def test_a_re_exported_name_counts_against_the_layers(tmp_path):
    # domain reaching store through a name store/mod.rs re-exports is still domain -> store.
    upward = dict(CLEAN)
    upward["store/mod.rs"] = CLEAN["store/mod.rs"] + "pub use error::StoreError;\n"
    upward["domain/ids.rs"] = "use crate::store::StoreError;\npub struct AccountId;\n"
    result = run("--src", str(plant(tmp_path, upward)))
    assert result.returncode == 1
    assert "domain/ids.rs: domain imports crate::store::error" in result.stderr


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
