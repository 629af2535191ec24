"""Facts about a Python error worked out from the code before any model is asked: the
sub-expression the traceback's caret marks, what the exception's message says about it (which
divisor, which key, which index, which `None`), and the calls that passed the bad value.

Each fact is a short sentence a user can check against the code. The analysis also says when
the facts point at a caller rather than the raising line (a bad literal passed in), and which
claims an explanation must not deny. The exception kinds live in explain/kinds.py; this module
holds the frames, the syntax trees (Python's own `ast`: exact columns, no grammar to install)
and the call-chain tracing they share.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hintwise.lsp_server.explain.tracebacks import Frame

COMPREHENSIONS = ("<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>", "<lambda>")
MAX_HOPS = 4


@dataclass
class Located:
    """A traceback frame in a workspace file, with that file's text."""

    frame: Frame
    path: Path
    display: str
    source: str
    _tree: ast.Module | None = None
    _parsed: bool = False

    @property
    def tree(self) -> ast.Module | None:
        if not self._parsed:
            self._parsed = True
            try:
                self._tree = ast.parse(self.source)
            except (SyntaxError, ValueError, RecursionError):
                self._tree = None
        return self._tree

    def line_text(self, line: int) -> str:
        """A 1-based line of the file, stripped."""
        lines = self.source.split("\n")
        return lines[line - 1].strip() if 0 < line <= len(lines) else ""

    def where(self, line: int | None = None) -> str:
        return f"{self.display}:{line if line is not None else self.frame.line}"


@dataclass
class Place:
    """A line the facts point at (0-based), with its file's text to check a fix against."""

    uri: str
    path: str  # for display
    line: int
    code: str
    source: str
    reason: str


@dataclass
class Analysis:
    """What the code and the message say about an error, before the model is asked."""

    kind: str  # "zero-division", "key", "index", "none-attribute", "arguments", …, "other"
    facts: list[str] = field(default_factory=list)
    summary: str = ""  # the explanation built from the facts alone
    culprit: Place | None = None  # set when the facts point at another line than the raising one
    claims: list[tuple[str, str]] = field(default_factory=list)  # (expression, what it was)


def segment(located: Located, node: ast.AST) -> str:
    text = ast.get_source_segment(located.source, node)
    return " ".join(text.split()) if text else ast.unparse(node)


def on_line(located: Located, line: int, kinds: tuple[type, ...]) -> list[ast.AST]:
    """Nodes of `kinds` that start on a 1-based line, outermost first."""
    tree = located.tree
    if tree is None:
        return []
    found = [n for n in ast.walk(tree) if isinstance(n, kinds) and getattr(n, "lineno", 0) == line]
    return sorted(found, key=lambda n: (getattr(n, "col_offset", 0), -_end_column(n)))


def _end_column(node: ast.AST) -> int:
    return getattr(node, "end_col_offset", 0) or 0


def marked_node(located: Located, nodes: list, key: Callable[[ast.AST], bool]) -> ast.AST | None:
    """Of the candidate nodes, the one the caret marks, else the first for which `key` holds."""
    marked = " ".join(located.frame.marked.split())
    if marked:
        for node in nodes:
            if segment(located, node) == marked and key(node):
                return node
    return next((node for node in nodes if key(node)), None)


def enclosing_function(
    located: Located, line: int
) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The innermost `def` whose body holds a 1-based line."""
    tree = located.tree
    if tree is None:
        return None
    best: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        holds = node.lineno <= line <= (node.end_lineno or node.lineno)
        if holds and (best is None or node.lineno >= best.lineno):
            best = node
    return best


def own_nodes(scope: ast.AST):
    """The nodes of a scope without those of the functions and classes nested in it."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def _binds(target: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(target))


@dataclass
class Binding:
    """Where a name got its value: the node that binds it and the value expression, if any."""

    line: int
    node: ast.AST
    value: ast.expr | None
    via: str  # "assign", "for", "comprehension", "parameter", "augmented", "other"


def bindings(scope: ast.AST, name: str) -> list[Binding]:
    """Every binding of `name` in a scope (not nested ones), in line order."""
    found: list[Binding] = []
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        for arg in [*scope.args.posonlyargs, *scope.args.args, *scope.args.kwonlyargs]:
            if arg.arg == name:
                found.append(Binding(scope.lineno, scope, None, "parameter"))
    for node in own_nodes(scope):
        found.extend(_binding(node, name))
    return sorted(found, key=lambda b: b.line)


def _binding(node: ast.AST, name: str) -> list[Binding]:
    line = getattr(node, "lineno", 0)
    if isinstance(node, ast.Assign) and any(_binds(t, name) for t in node.targets):
        direct = any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
        return [Binding(line, node, node.value if direct else None, "assign")]
    if isinstance(node, ast.AnnAssign) and _binds(node.target, name):
        return [Binding(line, node, node.value, "assign")]
    if isinstance(node, ast.AugAssign) and _binds(node.target, name):
        return [Binding(line, node, None, "augmented")]
    if isinstance(node, (ast.For, ast.AsyncFor)) and _binds(node.target, name):
        return [Binding(line, node, node.iter, "for")]
    if isinstance(node, ast.comprehension) and _binds(node.target, name):
        return [Binding(node.iter.lineno, node, node.iter, "comprehension")]
    if isinstance(node, ast.NamedExpr) and node.target.id == name:
        return [Binding(line, node, node.value, "assign")]
    if isinstance(node, (ast.With, ast.AsyncWith)):
        items = [i for i in node.items if i.optional_vars and _binds(i.optional_vars, name)]
        return [Binding(line, node, items[0].context_expr, "other")] if items else []
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        names = [a.asname or a.name.split(".")[0] for a in node.names]
        return [Binding(line, node, None, "other")] if name in names else []
    return []


def scope_of(located: Located, line: int) -> ast.AST | None:
    return enclosing_function(located, line) or located.tree


def last_binding(located: Located, name: str, line: int) -> Binding | None:
    """The binding of `name` in effect at a 1-based line (the last one above it), if any."""
    scope = scope_of(located, line)
    if scope is None:
        return None
    before = [b for b in bindings(scope, name) if b.line <= line]
    if not before and not isinstance(scope, ast.Module) and located.tree is not None:
        before = [b for b in bindings(located.tree, name) if b.via != "parameter"]
    return before[-1] if before else None


def is_empty_literal(node: ast.AST) -> bool:
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return not node.elts
    if isinstance(node, ast.Dict):
        return not node.keys
    if isinstance(node, ast.Constant):
        return node.value in ("", b"")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id in ("list", "dict", "set", "tuple", "str") and not node.args
    return False


def is_zero_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value == 0 and node.value is not False


def is_none_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def describe_literal(node: ast.AST) -> str:
    if is_empty_literal(node) and not isinstance(node, ast.Constant):
        kind = {ast.List: "list", ast.Tuple: "tuple", ast.Set: "set", ast.Dict: "dict"}
        return f"an empty {kind.get(type(node), 'collection')} `{ast.unparse(node)}`"
    return f"`{ast.unparse(node)}`"


def bad_part(node: ast.AST, bad: Callable[[ast.AST], bool]) -> tuple[ast.AST, str] | None:
    """The bad literal inside a literal container (`{"b": []}` holds `[]` under 'b')."""
    if bad(node):
        return node, ""
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            if value is not None and bad(value):
                label = ast.unparse(key) if key is not None else "**"
                return value, f" under the key {label}"
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        for index, element in enumerate(node.elts):
            if bad(element):
                return element, f" at index {index}"
    return None


@dataclass
class Chain:
    """How a bad value reached the raising frame: facts, and the call site that passed it."""

    facts: list[str] = field(default_factory=list)
    call_site: Place | None = None  # the direct caller's call, when a bad literal was found
    literal: str = ""  # "an empty list `[]`"
    literal_at: str = ""  # "app.py:10"


def callee_parameter(located: Located, name: str) -> bool:
    """Whether `name` is a parameter of the function running in this frame."""
    function = enclosing_function(located, located.frame.line)
    if function is None or function.name != located.frame.function:
        return False
    args = function.args
    return name in [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]


def argument_for(located: Located, callee: str, parameter: str, callee_def: ast.AST | None):
    """(the call on the frame's line that calls `callee`, the argument passed as `parameter`)."""
    calls = on_line(located, located.frame.line, (ast.Call,))

    def calls_callee(node: ast.AST) -> bool:
        func = node.func  # type: ignore[attr-defined]
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        return name == callee

    call = marked_node(located, calls, calls_callee)
    if not isinstance(call, ast.Call):
        return None, None
    for keyword in call.keywords:
        if keyword.arg == parameter:
            return call, keyword.value
    if isinstance(callee_def, (ast.FunctionDef, ast.AsyncFunctionDef)):
        names = [a.arg for a in [*callee_def.args.posonlyargs, *callee_def.args.args]]
        if names and names[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
            names = names[1:]
        if parameter in names and names.index(parameter) < len(call.args):
            return call, call.args[names.index(parameter)]
    return call, None


def trace_value(
    frames: list[Located], index: int, name: str, bad: Callable[[ast.AST], bool]
) -> Chain:
    """Follow parameter `name` of frame `index` back through its callers to where its value
    came from; stop at a bad literal (an empty list, a zero, a None) or after MAX_HOPS calls."""
    chain = Chain()
    first: Place | None = None
    for _ in range(MAX_HOPS):
        located = frames[index]
        if index == 0 or not callee_parameter(located, name):
            return chain
        callee_def = enclosing_function(located, located.frame.line)
        caller = frames[index - 1]  # a comprehension's frame shows the call too
        call, argument = argument_for(caller, located.frame.function, name, callee_def)
        if call is None or argument is None:
            return chain
        chain.facts.append(
            f"`{located.frame.function}` got `{name}` from `{segment(caller, call)}` at "
            f"{caller.where()}: the argument `{segment(caller, argument)}`"
        )
        owner = index - 1
        while owner > 0 and frames[owner].frame.function in COMPREHENSIONS:
            owner -= 1
        first = first or place_at(caller, caller.frame.line, "the call passes the bad value")
        origin = _origin(caller, frames[owner], argument, bad, chain)
        if chain.literal_at:
            chain.call_site = first
        if origin is None:
            return chain
        name, index = origin, owner
    return chain


def place_at(located: Located, line: int, reason: str) -> Place:
    return Place(
        located.path.as_uri(),
        located.display,
        line - 1,
        located.line_text(line),
        located.source,
        reason,
    )


def _origin(
    caller: Located,
    owner: Located,
    argument: ast.expr,
    bad: Callable[[ast.AST], bool],
    chain: Chain,
) -> str | None:
    """Where the argument's value came from in the caller (`owner` is the frame of the function
    the call is in); that function's parameter name when the value came from its own caller
    (keep tracing), else None."""
    found = bad_part(argument, bad)
    if found is not None:
        chain.literal = describe_literal(found[0])
        chain.facts.append(f"the argument is {chain.literal}{found[1]}, written at the call site")
        chain.literal_at = caller.where()
        return None
    for _ in range(MAX_HOPS):
        base = argument if isinstance(argument, ast.Name) else _base_name(argument)
        if base is None:
            return None
        argument = base
        binding = last_binding(caller, argument.id, caller.frame.line)
        if binding is None:
            return None
        if binding.via == "parameter":
            return argument.id if callee_parameter(owner, argument.id) else None
        if binding.value is None:
            return None
        fact = _binding_fact(caller, argument.id, binding, bad, chain)
        chain.facts.append(fact)
        if chain.literal_at:
            return None
        argument = binding.value
    return None


def _base_name(node: ast.AST) -> ast.Name | None:
    """`groups` of `groups.items()`, `data["x"]`, `obj.attr`."""
    while isinstance(node, (ast.Call, ast.Attribute, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node if isinstance(node, ast.Name) else None


def _binding_fact(
    caller: Located, name: str, binding: Binding, bad: Callable[[ast.AST], bool], chain: Chain
) -> str:
    value = binding.value
    assert value is not None
    written = segment(caller, value)
    if binding.via in ("for", "comprehension"):
        fact = (
            f"`{name}` takes {each_item(binding.node, name, value, caller)} (line {binding.line})"
        )
    else:
        fact = f"`{name}` is assigned at line {binding.line}: `{name} = {written}`"
    found = bad_part(value, bad)
    if found is not None:
        chain.literal = describe_literal(found[0])
        fact += f", which holds {chain.literal}{found[1]}"
        chain.literal_at = caller.where(binding.line)
    return fact


def each_item(loop: ast.AST, name: str, iterated: ast.expr, located: Located) -> str:
    """ "each value of `groups`" for `for k, v in groups.items()`; else "each item of `xs`"."""
    target = getattr(loop, "target", None)
    is_items = (
        isinstance(iterated, ast.Call)
        and isinstance(iterated.func, ast.Attribute)
        and iterated.func.attr == "items"
        and not iterated.args
    )
    if is_items and isinstance(target, ast.Tuple) and len(target.elts) == 2:
        names = [getattr(e, "id", "") for e in target.elts]
        if name in names:
            owner = segment(located, iterated.func.value)  # type: ignore[attr-defined]
            return f"each {'key' if names.index(name) == 0 else 'value'} of `{owner}`"
    return f"each item of `{segment(located, iterated)}`"
