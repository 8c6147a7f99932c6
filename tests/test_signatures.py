"""Compiled kernels are called with typed arguments, never with literals.

Numba compiles a callee once per tuple of argument types it meets, and a literal ``0`` or
``False`` is a type of its own, as is a variable bound to a literal (until type inference has
seen its other assignments) and ``prange``'s index (int64 in the function, uint64 in its parallel
body). Each would compile the callee, and everything it calls, once more: with them the cold
start took about 110 s, without them about 70 s (``bench/system.py``, 2026-11). This checks the sources,
so it holds whether or not the on-disk cache is warm.
"""

import ast
import textwrap
from pathlib import Path

import pytest

KERNELS = sorted((Path(__file__).resolve().parent.parent / "fastbp" / "kernels").glob("*.py"))


def _decorator_name(node):
    target = node.func if isinstance(node, ast.Call) else node
    return target.id if isinstance(target, ast.Name) else None


def compiled_functions(trees):
    """Names of the functions decorated ``@jit`` without ``inline=...`` (those are compiled
    on their own; inlined ones are specialised at every call site anyway)."""
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                for dec in node.decorator_list:
                    inline = isinstance(dec, ast.Call) and any(k.arg == "inline"
                                                               for k in dec.keywords)
                    if _decorator_name(dec) == "jit" and not inline:
                        names.add(node.name)
    return names


def _is_literal(node):
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (bool, int)


def _literal_names(func):
    """Names bound to an int or bool literal somewhere in ``func``, and ``prange`` indices."""
    names = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and _is_literal(node.value):
                    names.add(target.id)
                elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    names.update(t.id for t, v in zip(target.elts, node.value.elts)
                                 if isinstance(t, ast.Name) and _is_literal(v))
        elif (isinstance(node, ast.For) and isinstance(node.iter, ast.Call)
              and _decorator_name(node.iter) == "prange" and isinstance(node.target, ast.Name)):
            names.add(node.target.id)
    return names


def literal_arguments(tree, compiled):
    """(line, callee, argument) for every call to a function in ``compiled`` that passes a
    literal, a name bound to one, or a ``prange`` index."""
    found = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef):
            continue
        names = _literal_names(func)
        for node in ast.walk(func):
            if not isinstance(node, ast.Call):
                continue
            callee = getattr(node.func, "id", getattr(node.func, "attr", None))
            if callee not in compiled:
                continue
            for arg in list(node.args) + [k.value for k in node.keywords]:
                if _is_literal(arg) or (isinstance(arg, ast.Name) and arg.id in names):
                    found.append((node.lineno, callee, ast.unparse(arg)))
    return sorted(set(found))


def test_kernels_pass_no_literal_to_compiled_calls():
    trees = {path.name: ast.parse(path.read_text()) for path in KERNELS}
    compiled = compiled_functions(trees.values())
    assert {"train_epoch", "infer", "forward_pass", "optimizer_step"} <= compiled
    found = {name: literal_arguments(tree, compiled) for name, tree in trees.items()}
    assert {name: hits for name, hits in found.items() if hits} == {}


@pytest.mark.parametrize("body, hit", [
    ("step(0, x)", "0"),
    ("step(x, flag=False)", "False"),
    ("step(x, -1)", "-1"),
    ("k = 0\nwhile k < 3:\n    step(k, x)\n    k = k + x", "k"),
    ("a, k = x, 0\nstep(k, a)", "k"),
    ("for s in prange(2):\n    step(s, x)", "s"),
])
def test_the_check_finds_each_kind_of_literal(body, hit):
    source = "@jit\ndef step(a, b, flag=True):\n    return a\n\n\n@jit\ndef caller(x):\n" + \
        textwrap.indent(body, "    ") + "\n"
    tree = ast.parse(source)
    assert [arg for _, _, arg in literal_arguments(tree, compiled_functions([tree]))] == [hit]


def test_typed_values_and_inlined_callees_pass():
    source = textwrap.dedent("""
        @jit(inline="always")
        def small(a):
            return a

        @jit
        def step(a, b):
            return a

        @jit
        def caller(x):
            k = np.int64(0)
            for i in prange(2):
                s = np.int64(i)
                step(s, np.bool_(False))
            small(0)
            return step(k, x + 1)
        """)
    tree = ast.parse(source)
    assert literal_arguments(tree, compiled_functions([tree])) == []
