"""The project's import graph (issue 10 item 3; docs/architecture.md): no cycles among the
project's modules, counting imports inside functions (they hide a cycle, they do not break
it), and each layer imports only the layers below it. Reads the source: no import runs."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Directory -> package name (handlers/ ships as nexus_chat.handlers, setup.cfg).
SOURCES = {ROOT / "nexus_chat": "nexus_chat", ROOT / "handlers": "nexus_chat.handlers"}


def project_modules() -> dict[str, Path]:
    modules = {}
    for directory, package in SOURCES.items():
        for path in directory.rglob("*.py"):
            parts = list(path.relative_to(directory).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST):
    """Every import statement, at any depth, except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if _type_checking_only(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            stack.append(child)


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base_parts = package.split(".")
                    base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                while target and target not in modules:   # `import a.b.c` of a name in a.b
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


# Which package may not import which (docs/architecture.md#layers). A prefix names a module
# and everything under it.
FORBIDDEN = {
    # The protocol layer carries no product code: it imports nothing of the rest.
    "nexus_chat.realtime": ("nexus_chat.",),
    # SQL: one named function per query, on an executor.
    "nexus_chat.queries": ("nexus_chat.services", "nexus_chat.handlers", "nexus_chat.schemas",
                           "nexus_chat.web", "nexus_chat.context", "nexus_chat.events",
                           "nexus_chat.realtime", "nexus_chat.app", "nexus_chat.runtime"),
    # Request schemas: declarations, no I/O.
    "nexus_chat.schemas": ("nexus_chat.services", "nexus_chat.handlers", "nexus_chat.queries",
                           "nexus_chat.web", "nexus_chat.db", "nexus_chat.realtime", "nexus_chat.app"),
    # The domain: plain values in, ApiError or published events out; no HTTP, no sockets.
    "nexus_chat.services": ("nexus_chat.handlers", "nexus_chat.web", "nexus_chat.realtime",
                            "nexus_chat.schemas", "nexus_chat.app", "nexus_chat.routes",
                            "nexus_chat.runtime", "tornado"),
    # Handlers go through services; SQL is not theirs.
    "nexus_chat.handlers": ("nexus_chat.queries", "nexus_chat.app", "nexus_chat.routes",
                            "nexus_chat.runtime"),
    "nexus_chat.events": ("nexus_chat.",),
    # Shared state through Redis: below the composition, beside the protocol layer.
    "nexus_chat.cluster": ("nexus_chat.handlers", "nexus_chat.realtime", "nexus_chat.runtime",
                           "nexus_chat.app", "nexus_chat.routes", "nexus_chat.web", "tornado"),
}
# What a layer may import all the same: its own modules, and for the protocol layer the one
# foundation that imports nothing of the project (the Redis subscription loop it shares with
# the cluster bus).
ALLOWED_INSIDE = {"nexus_chat.realtime": ("nexus_chat.realtime.", "nexus_chat.redis_subscription")}


def external_imports(path: Path) -> set[str]:
    found = set()
    for node in _imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif node.level == 0 and node.module:
            found.add(node.module)
    return found


def violations(graph: dict[str, set[str]], externals: dict[str, set[str]]) -> list[str]:
    """``graph``: project imports per module; ``externals``: its other imports (tornado, …)."""
    found = []
    for name in sorted(graph):
        for layer, banned in FORBIDDEN.items():
            if name != layer and not name.startswith(layer + "."):
                continue
            for target in sorted(graph[name] | externals.get(name, set())):
                if target == layer or target.startswith(ALLOWED_INSIDE.get(layer, ("\0",))):
                    continue
                if any(target == b or target.startswith(b if b.endswith(".") else b + ".") for b in banned):
                    found.append(f"{name} imports {target}")
    return found


def test_layers_import_only_what_they_may():
    externals = {name: {t for t in external_imports(path) if not t.startswith("nexus_chat")}
                 for name, path in project_modules().items()}
    assert violations(import_graph(), externals) == []


def test_the_layer_check_finds_a_violation():
    graph = {"nexus_chat.services.chat": {"nexus_chat.queries.chat", "nexus_chat.handlers.realtime"},
             "nexus_chat.realtime.server": {"nexus_chat.realtime.engine", "nexus_chat.events"},
             "nexus_chat.handlers.chat": {"nexus_chat.services.chat"}}
    assert violations(graph, {"nexus_chat.services.chat": {"tornado.web"}}) == [
        "nexus_chat.realtime.server imports nexus_chat.events",
        "nexus_chat.services.chat imports nexus_chat.handlers.realtime",
        "nexus_chat.services.chat imports tornado.web"]


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_single_letter_module_aliases():
    """`from nexus_chat.schemas import chat as s` hides what `s.X` is; name the module."""
    found = []
    for name, path in sorted(project_modules().items()):
        for node in _imports(ast.parse(path.read_text(), str(path))):
            found += [f"{name}: {alias.name} as {alias.asname}" for alias in node.names
                      if alias.asname is not None and len(alias.asname) == 1]
    assert found == []


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "nexus_chat.realtime.conformance" in graph["nexus_chat.cli"]   # imported inside main()
    assert "nexus_chat.handlers.realtime" in graph["nexus_chat.runtime"]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_shared_redis_subscription_imports_nothing_of_the_project():
    """The protocol layer may use it only because it stands alone."""
    assert import_graph()["nexus_chat.redis_subscription"] == set()
