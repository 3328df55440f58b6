"""The Bazel BUILD files cover mmin_tf: every module is in a target's `srcs`, every listed source
exists, every command (a module with a `__main__` guard) is the `main` of a py_binary, and every
`mmin_tf` module a target's sources import is in the target or its transitive `deps` (Bazel itself
does not check imports: a missing dep only shows when a command runs).

The BUILD files are read as Python syntax, the Starlark they use: calls, lists of strings, names
bound to such lists, `+` and `glob(include, exclude=...)`; anything else in `srcs`, `deps` or
`main` is an error. No Bazel needed.
"""

import ast
import dataclasses
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]  # the source tree, also under `bazel test`
PY_RULES = ("py_library", "py_binary", "py_test")
MAIN_GUARD = re.compile(r"""^if __name__ == ["']__main__["']:""", re.MULTILINE)


class BuildFileError(ValueError):
    """A BUILD file this reader cannot evaluate."""


@dataclasses.dataclass(frozen=True)
class Target:
    rule: str
    label: str  # "//package:name"
    srcs: frozenset  # absolute paths
    deps: tuple  # labels, "//package:name"
    main: pathlib.Path = None  # binaries and tests


class _BuildFile:
    """One BUILD file: its package directory and the lists bound to names at its top level."""

    def __init__(self, path, root):
        self.path, self.root, self.package_dir = path, root, path.parent
        self.package = path.parent.relative_to(root).as_posix()
        self.tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        self.names = {}
        for node in self.tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                if isinstance(node.value, (ast.List, ast.BinOp, ast.Name)):
                    self.names[node.targets[0].id] = node.value

    def error(self, node, message):
        return BuildFileError(f"{self.path}:{node.lineno}: {message}: {ast.unparse(node)}")

    def strings(self, node):
        """A list of strings: a literal, a bound name or a sum of those."""
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.strings(node.left) + self.strings(node.right)
        if isinstance(node, ast.Name) and node.id in self.names:
            return self.strings(self.names[node.id])
        if isinstance(node, ast.List) and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            return [e.value for e in node.elts]
        raise self.error(node, "expected a list of strings")

    def label(self, text):
        """`//package:name` for a label written in this file (`:name`, `//package`, ...)."""
        if text.startswith("@"):
            return text
        if text.startswith("//"):
            package, _, name = text[2:].partition(":")
            return f"//{package}:{name or package.rsplit('/', 1)[-1]}"
        return f"//{self.package}:{text.lstrip(':')}"

    def source(self, text):
        package, _, name = self.label(text)[2:].partition(":")
        return self.root / package / name

    def glob(self, patterns):
        return {
            path
            for pattern in patterns
            for path in self.package_dir.glob(pattern)
            if path.is_file() and _package_of(path, self.root) == self.package_dir  # globs stop at subpackages
        }

    def files(self, node):
        """The set of paths a `srcs` expression names."""
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.files(node.left) | self.files(node.right)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "glob":
            keywords = {keyword.arg: keyword.value for keyword in node.keywords}
            if len(node.args) != 1 or set(keywords) - {"exclude"}:
                raise self.error(node, "unsupported glob")
            exclude = self.glob(self.strings(keywords["exclude"])) if "exclude" in keywords else set()
            return self.glob(self.strings(node.args[0])) - exclude
        if isinstance(node, (ast.List, ast.Name)):
            return {self.source(text) for text in self.strings(node)}
        raise self.error(node, "cannot evaluate")

    def targets(self):
        for node in ast.walk(self.tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in PY_RULES):
                continue
            keywords = {keyword.arg: keyword.value for keyword in node.keywords}
            if not isinstance(keywords.get("name"), ast.Constant):
                raise self.error(node, f"a {node.func.id} without a literal name")
            name = keywords["name"].value
            main = None
            if node.func.id != "py_library":
                main_node = keywords.get("main")
                if main_node is not None and not isinstance(main_node, ast.Constant):
                    raise self.error(main_node, "expected a string")
                main = self.source(main_node.value if main_node is not None else f"{name}.py")
            yield Target(
                rule=node.func.id,
                label=self.label(name),
                srcs=frozenset(self.files(keywords["srcs"])) if "srcs" in keywords else frozenset(),
                deps=tuple(self.label(text) for text in self.strings(keywords["deps"])) if "deps" in keywords else (),
                main=main,
            )


def _package_of(path, root):
    """The directory of the BUILD file nearest above `path` (its Bazel package)."""
    for directory in path.parents:
        if (directory / "BUILD").exists() or directory == root:
            return directory
    raise BuildFileError(f"{path} is outside {root}")


def read_targets(root, under):
    """`{label: Target}` for the py rules in the BUILD files below `root / under`."""
    return {
        target.label: target
        for build_file in sorted((root / under).rglob("BUILD"))
        for target in _BuildFile(build_file, root).targets()
    }


def imported_files(path, root):
    """The files of `root`'s packages that the module `path` imports (at any depth of its code),
    with the `__init__.py` of every package on the way."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    files = set()
    for name in names:
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            base = root.joinpath(*parts[:depth])
            for candidate in (base / "__init__.py", base.with_suffix(".py")):
                if candidate.is_file():
                    files.add(candidate)
    return files


def missing_imports(targets, root):
    """`[(target, module, imported file)]` where the file is in no target of the closure of deps."""
    closures = {}

    def closure(label):
        if label not in closures:
            target = targets[label]
            closures[label] = set(target.srcs).union(*(closure(dep) for dep in target.deps if dep in targets))
        return closures[label]

    return [
        (label, module.relative_to(root).as_posix(), imported.relative_to(root).as_posix())
        for label, target in sorted(targets.items())
        for module in sorted(target.srcs)
        for imported in sorted(imported_files(module, root) - closure(label))
    ]


@pytest.fixture(scope="module")
def targets():
    return read_targets(ROOT, "mmin_tf")


def _relative(paths):
    return sorted(path.relative_to(ROOT).as_posix() for path in paths)


def _modules():
    return {path for path in (ROOT / "mmin_tf").rglob("*.py") if "__pycache__" not in path.parts}


def test_every_module_is_in_a_target(targets):
    listed = set().union(*(target.srcs for target in targets.values()))
    assert _relative(_modules() - listed) == [], "modules in no Bazel target's srcs (add them to their package's BUILD)"


def test_every_listed_source_and_dep_exists(targets):
    assert _relative({path for target in targets.values() for path in target.srcs if not path.is_file()}) == []
    assert sorted({dep for target in targets.values() for dep in target.deps} - set(targets)) == []


def test_every_command_has_a_py_binary(targets):
    commands = {path for path in _modules() if MAIN_GUARD.search(path.read_text(encoding="utf-8"))}
    assert {"mmin_tf/train.py", "mmin_tf/export/__main__.py"} <= set(_relative(commands))
    binaries = {target.main for target in targets.values() if target.rule == "py_binary" and target.main in target.srcs}
    assert _relative(commands - binaries) == [], "commands without a py_binary (main = the module)"


def test_every_import_is_in_the_deps(targets):
    assert missing_imports(targets, ROOT) == [], "(target, module, imported file not in the target's deps)"


def _write(root, files):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_reader_follows_globs_excludes_names_labels_and_subpackages(tmp_path):
    _write(tmp_path, {name: "" for name in ("pkg/a.py", "pkg/b.py", "pkg/__main__.py", "pkg/sub/c.py", "pkg/other/d.py")})
    _write(tmp_path, {
        "pkg/sub/BUILD": 'py_library(name = "sub", srcs = glob(["*.py"]))\n',
        "pkg/BUILD": 'COMMANDS = ["__main__.py"]\n'
                     'py_library(name = "lib", srcs = glob(["**/*.py"], exclude = COMMANDS + ["b.py"]) + [":b.py"],\n'
                     '           deps = ["//pkg/sub"])\n'
                     'py_binary(name = "main", srcs = ["//pkg:__main__.py"], main = "__main__.py", deps = [":lib"])\n',
    })
    read = {label: (target.rule, _relative_to(tmp_path, target.srcs), target.deps, target.main)
            for label, target in read_targets(tmp_path, "pkg").items()}
    assert read == {
        "//pkg:lib": ("py_library", ["pkg/a.py", "pkg/b.py", "pkg/other/d.py"], ("//pkg/sub:sub",), None),
        "//pkg:main": ("py_binary", ["pkg/__main__.py"], ("//pkg:lib",), tmp_path / "pkg" / "__main__.py"),
        "//pkg/sub:sub": ("py_library", ["pkg/sub/c.py"], (), None),
    }


def _relative_to(root, paths):
    return sorted(path.relative_to(root).as_posix() for path in paths)


def test_an_import_outside_the_deps_is_found(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low.py": "def f():\n    from pkg.high import g  # a late import counts too\n",
        "pkg/high.py": "import os\nfrom pkg import low\n",
        "pkg/BUILD": 'py_library(name = "low", srcs = ["__init__.py", "low.py"])\n'
                     'py_library(name = "high", srcs = ["high.py"], deps = [":low"])\n',
    })
    assert missing_imports(read_targets(tmp_path, "pkg"), tmp_path) == [("//pkg:low", "pkg/low.py", "pkg/high.py")]


@pytest.mark.parametrize(
    "arguments, message",
    [('srcs = SOURCES', "expected a list of strings: SOURCES"),
     ('srcs = select({"//c": ["a.py"]})', "cannot evaluate"),
     ('srcs = glob(["*.py"], allow_empty = True)', "unsupported glob"),
     ('srcs = ["a.py", NAME]', "expected a list of strings"),
     ('srcs = [], deps = DEPS', "expected a list of strings: DEPS")],
)
def test_reader_rejects_what_it_cannot_evaluate(tmp_path, arguments, message):
    _write(tmp_path, {"pkg/BUILD": f'py_library(name = "lib", {arguments})\n'})
    with pytest.raises(BuildFileError, match=re.escape(message)):
        read_targets(tmp_path, "pkg")
