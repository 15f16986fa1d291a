"""Packaging: what setup.cfg ships is the code in the repository, under the nexus_chat name."""
from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def options() -> configparser.SectionProxy:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser["options"]


def listed(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip() and "=" not in line]


def package_dirs() -> dict[str, str]:
    return {name.strip(): path.strip() for name, path in
            (line.split("=") for line in options()["package_dir"].splitlines() if "=" in line)}


def test_handlers_ship_inside_the_nexus_chat_namespace():
    assert package_dirs() == {"nexus_chat.handlers": "handlers"}
    assert "handlers" not in listed(options()["packages"])


def test_every_package_directory_is_listed_in_setup_cfg():
    """`packages` is an explicit list (find: cannot see a mapped directory), so a new
    sub-package must be added there or it is missing from the wheel."""
    roots = {"nexus_chat": ROOT / "nexus_chat", **{name: ROOT / path for name, path in package_dirs().items()}}
    found = set()
    for name, directory in roots.items():
        for init in directory.rglob("__init__.py"):
            relative = init.parent.relative_to(directory).parts
            found.add(".".join((name, *relative)))
    assert sorted(listed(options()["packages"])) == sorted(found)


def test_the_app_imports_its_handlers_by_the_package_name():
    import nexus_chat.app
    import nexus_chat.handlers.auth

    assert Path(nexus_chat.handlers.auth.__file__).resolve().parent == ROOT / "handlers"
    assert nexus_chat.app.auth is nexus_chat.handlers.auth
