"""Imports run one way (DESIGN.md): data <- retrieval <- indexing <- training <- evaluation <- cli.

Every module under ``retr/`` is parsed; each import of a ``retr`` module, at the top or inside a function, and each
``import_module("retr....")`` call with a literal name, may only name the module's own stage or an earlier one.
The package top (``retr/__init__.py``, ``__main__.py``, ``pipeline.py``) sits with the CLI, at the end of the chain.
DESIGN.md draws indexing and training side by side; training comes after indexing here because mining builds
the BM25 index it searches (``retr.training.mining`` -> ``retr.indexing.bm25``), never the other way round.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "retr"
STAGES = ["data", "retrieval", "indexing", "training", "evaluation", "cli"]
TOP = len(STAGES) - 1  # the package top (API, __main__, pipeline) may import every stage, like the CLI
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()  # (importing module, imported module) allowed against the direction


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str) -> int:
    """The stage of a ``retr`` module: its index in STAGES, TOP for the package's own top-level modules.

    The package root itself (``from retr import __version__``) is loaded by Python before any submodule and
    imports stages only lazily, so naming it adds no arrow: it ranks first."""
    if module == "retr":
        return 0
    parts = module.split(".")
    return STAGES.index(parts[1]) if len(parts) > 1 and parts[1] in STAGES else TOP


def imported_modules(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """(line, module) of every ``retr`` import in a file (``module`` is its dotted name), relative ones resolved,
    lazy ones included, in line order."""
    tree = ast.parse(path.read_text(), filename=str(path))
    module = module or module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from retr.training import objectives`` names the stage; ``from retr import cli`` a submodule
            names = [base]
            if base == "retr":
                names = [f"retr.{alias.name}" if (PACKAGE / alias.name).is_dir()
                         or (PACKAGE / f"{alias.name}.py").is_file() else "retr" for alias in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names = [node.args[0].value]
        found += [(node.lineno, name) for name in names if name == "retr" or name.startswith("retr.")]
    return sorted(found, key=lambda item: item[0])


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_in_a_known_place() -> None:
    folders = {path.relative_to(PACKAGE).parts[0] for path in MODULES if len(path.relative_to(PACKAGE).parts) > 1}
    assert folders <= set(STAGES), f"a stage folder the direction test does not know: {folders - set(STAGES)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_stage_direction(path: Path) -> None:
    importer = module_name(path)
    backwards = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {importer} ({STAGES[rank(importer)]}) imports {name} "
        f"({'top' if rank(name) == TOP and not name.startswith('retr.cli') else STAGES[rank(name)]})"
        for line, name in imported_modules(path)
        if rank(name) > rank(importer) and (importer, name) not in KNOWN_EXCEPTIONS
    ]
    assert not backwards, "imports against data <- retrieval <- indexing <- training <- evaluation <- cli:\n" + \
        "\n".join(backwards)


def test_the_check_sees_lazy_relative_and_dynamic_imports(tmp_path: Path) -> None:
    """The parser finds what the direction test relies on (so the test above cannot pass by seeing nothing)."""
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from retr.indexing import dense\n    from ..training import train\n"
                      "    import retr.evaluation.report\n    importlib.import_module('retr.cli')\n"
                      "    from retr import pipeline, __version__\n")
    names = [name for _, name in imported_modules(source, "retr.retrieval.probe")]
    assert names == ["retr.indexing", "retr.training", "retr.evaluation.report", "retr.cli", "retr.pipeline", "retr"]
    assert [rank(name) > rank("retr.retrieval.probe") for name in names] == [True] * 5 + [False]
    assert imported_modules(PACKAGE / "retrieval" / "dense_search.py")  # real files do import retr modules
