"""Reading and writing the bundle's YAML files (safe YAML, sorted keys, literal blocks)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sparklio_bi.superset.assets.layout import METADATA, OWNED_PATTERNS, AssetsError


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (markdown, query_context JSON) as literal blocks: readable diffs."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


class _Loader(yaml.SafeLoader):
    """Safe YAML without aliases: Superset's exports never use them, and a few nested aliases
    (a "billion laughs" file of 2 KB) expand to gigabytes."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in assets",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


def load_yaml(text: str) -> Any:
    """Parse one asset file (safe, no aliases)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def dump_yaml(data: Any) -> str:
    """YAML with sorted keys, the form every file in assets/ has."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=True, allow_unicode=True, width=100)


def read_bundle(assets_dir: Path) -> dict[str, str]:
    """Text of every YAML file of the bundle, by path relative to assets_dir (UTF-8; a file that
    is not raises AssetsError naming it)."""
    texts, problems = read_texts(assets_dir)
    if problems:
        raise AssetsError(problems[0], problems)
    return texts


def read_texts(assets_dir: Path) -> tuple[dict[str, str], list[str]]:
    texts, problems = {}, []
    for path in sorted(assets_dir.rglob("*.yaml")):
        try:
            texts[path.relative_to(assets_dir).as_posix()] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            problems.append(f"{path}: encoding: not UTF-8 (byte {exc.object[exc.start]:#04x} at offset {exc.start})")
    return texts, problems


def owned_files(assets_dir: Path) -> list[Path]:
    """The bundle's own files under assets_dir (other files and folders are the user's)."""
    return sorted({path for pattern in OWNED_PATTERNS for path in assets_dir.glob(pattern) if path.is_file()})


def check_export_target(assets_dir: Path) -> None:
    """Export writes into a bundle (it has metadata.yaml), an empty folder or a new one only."""
    if assets_dir.exists() and not (assets_dir / METADATA).is_file() and \
            (not assets_dir.is_dir() or any(assets_dir.iterdir())):
        raise AssetsError(f"{assets_dir} is not a bundle (no {METADATA}) and not empty: "
                          "export into the bundle's folder or an empty one")


def write(assets_dir: Path, files: dict[str, str]) -> list[Path]:
    """Write the files; remove the bundle's own files of objects no longer exported. A folder that
    is neither a bundle (metadata.yaml) nor empty is refused; no folder is ever removed."""
    check_export_target(assets_dir)
    for old in owned_files(assets_dir) if assets_dir.exists() else []:
        if old.relative_to(assets_dir).as_posix() not in files:
            old.unlink()
    written = []
    for rel, text in sorted(files.items()):
        path = assets_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written
