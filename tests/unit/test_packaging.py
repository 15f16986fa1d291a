"""Packaging: what setup.cfg ships is the code in the repository, under the nexus_chat name."""
from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def options() -> configparser.SectionProxy:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser["options"]


def listed(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip() and "=" not in line]


def package_dirs() -> dict[str, str]:
    return {name.strip(): path.strip() for name, path in
            (line.split("=") for line in options()["package_dir"].splitlines() if "=" in line)}


def test_handlers_sql_and_templates_ship_inside_the_nexus_chat_namespace():
    assert package_dirs() == {"nexus_chat.handlers": "handlers", "nexus_chat.sql": "sql",
                              "nexus_chat.templates": "templates"}
    assert not {"handlers", "sql", "templates"} & set(listed(options()["packages"]))


def test_migrations_and_templates_are_read_as_package_data():
    from nexus_chat import mail
    from nexus_chat.migrate import migration_files

    on_disk = sorted(p.name for p in (ROOT / "sql").glob("[0-9]*.sql"))
    assert [p.name for p in migration_files()] == on_disk and on_disk
    text, html = mail.render("verify_email", subject="Verify", full_name="Ann <b>", link="https://x.test/v",
                             valid_for="24 hours")
    assert "Hi Ann <b>," in text and "https://x.test/v" in text
    assert "Ann &lt;b&gt;" in html and "https://x.test/v" in html
    assert html.startswith("<!doctype html>") and "<title>Verify</title>" in html   # _layout.html


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


def test_the_route_table_serves_handlers_from_the_package_name():
    import nexus_chat.handlers
    from nexus_chat.routes import app_routes

    assert Path(nexus_chat.handlers.__file__).resolve().parent == ROOT / "handlers"
    modules = {route[1].__module__ for route in app_routes()}
    assert "nexus_chat.handlers.auth" in modules
    assert not [name for name in modules if name.split(".")[0] == "handlers"]
