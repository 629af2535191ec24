"""Facts per exception kind: one function each, reading the raising line's syntax tree and the
exception's message (see explain/facts.py for the frames and the call-chain tracing).

Each returns an Analysis: facts a user can check, a plain explanation built from them alone
(shown when the model's own text fails the checks), the caller to blame when the bad value was
passed in, and the claims an explanation must not deny.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Callable

from hintwise.lsp_server.explain.facts import (
    Analysis,
    Located,
    bindings,
    each_item,
    enclosing_function,
    is_empty_literal,
    is_none_literal,
    is_zero_literal,
    last_binding,
    marked_node,
    on_line,
    place_at,
    segment,
    trace_value,
)

DIVISIONS = (ast.Div, ast.FloorDiv, ast.Mod)
IN_PLACE = ("sort", "append", "extend", "insert", "reverse", "update", "clear", "remove", "add")


def _start(frames: list[Located], kind: str) -> tuple[Located, int, Analysis]:
    """The raising frame, its 1-based line, and an empty analysis of that kind."""
    return frames[-1], frames[-1].frame.line, Analysis(kind)


def _chain_into(analysis: Analysis, frames: list[Located], name: str, bad) -> str:
    """Trace parameter `name` of the raising frame to its callers; the sentence that says where
    the bad value came from ("" when not traced)."""
    chain = trace_value(frames, len(frames) - 1, name, bad)
    analysis.facts.extend(chain.facts)
    if chain.call_site is None:
        return ""
    analysis.culprit = chain.call_site
    function = frames[-1].frame.function
    return (
        f" It comes from {chain.literal} written at {chain.literal_at}, which reaches "
        f"`{function}` through the call at {chain.call_site.path}:{chain.call_site.line + 1}."
    )


def zero_division(frames: list[Located], message: str) -> Analysis:
    located, line, analysis = _start(frames, "zero-division")
    nodes = on_line(located, line, (ast.BinOp, ast.AugAssign))
    node = marked_node(located, nodes, lambda n: isinstance(n.op, DIVISIONS))  # type: ignore[attr-defined]
    if node is None:
        analysis.summary = f"Line {line} divided by zero."
        return analysis
    divisor = node.right if isinstance(node, ast.BinOp) else node.value  # type: ignore[attr-defined]
    written = segment(located, divisor)
    analysis.facts.append(f"the divisor `{written}` (right of `{_op(node)}`) was 0")
    analysis.claims.append((written, "0"))
    summary = f"Line {line} divides by `{written}`, which was 0."
    name, bad = _divisor_name(divisor)
    if isinstance(divisor, ast.Call) and name:
        analysis.facts.append(f"`{written}` is 0 only when `{name}` is empty")
        analysis.claims.append((name, "empty"))
        summary = f"Line {line} divides by `{written}`, which is 0 because `{name}` was empty."
    if name:
        summary += _binding_sentence(analysis, located, name, line)
        summary += _zero_set_here(analysis, located, name, line)
        summary += _chain_into(analysis, frames, name, bad)
    analysis.summary = summary
    return analysis


def _zero_set_here(analysis: Analysis, located: Located, name: str, line: int) -> str:
    """The line of the same function that gave the divisor its 0: `i = 0`, or a loop over a
    `range` that starts at 0. That line is the culprit."""
    binding = last_binding(located, name, line)
    if binding is None or binding.value is None:
        return ""
    value = binding.value
    if binding.via == "assign" and is_zero_literal(value):
        analysis.culprit = place_at(located, binding.line, "it sets the divisor to 0")
        return f" Line {binding.line} sets `{name}` to 0."
    is_range = isinstance(value, ast.Call) and getattr(value.func, "id", "") == "range"
    if binding.via == "for" and is_range and value.args:  # type: ignore[attr-defined]
        args = value.args  # type: ignore[attr-defined]
        if len(args) == 1 or is_zero_literal(args[0]):
            analysis.facts.append(f"`{segment(located, value)}` starts at 0")
            analysis.culprit = place_at(located, binding.line, "its range starts at 0")
            return f" `{name}` runs over `{segment(located, value)}`, which starts at 0."
    return ""


def _op(node: ast.AST) -> str:
    op = node.op  # type: ignore[attr-defined]
    return {ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%"}.get(type(op), "/")


def _divisor_name(divisor: ast.AST) -> tuple[str, Callable[[ast.AST], bool]]:
    """(the name whose value made the divisor 0, what a bad literal for it looks like)."""
    if isinstance(divisor, ast.Name):
        return divisor.id, is_zero_literal
    is_len = isinstance(divisor, ast.Call) and getattr(divisor.func, "id", "") == "len"
    if is_len and divisor.args and isinstance(divisor.args[0], ast.Name):  # type: ignore[attr-defined]
        return divisor.args[0].id, is_empty_literal  # type: ignore[attr-defined]
    return "", is_zero_literal


def _binding_sentence(analysis: Analysis, located: Located, name: str, line: int) -> str:
    """A fact on where a local name was assigned (not for parameters: the chain says that)."""
    binding = last_binding(located, name, line)
    if binding is None or binding.via == "parameter" or binding.value is None:
        return ""
    written = segment(located, binding.value)
    if binding.via in ("for", "comprehension"):
        each = each_item(binding.node, name, binding.value, located)
        analysis.facts.append(f"`{name}` takes {each} (line {binding.line})")
        return ""
    analysis.facts.append(f"`{name}` is assigned at line {binding.line}: `{name} = {written}`")
    return f" `{name}` was set at line {binding.line} from `{written}`."


def key_error(frames: list[Located], message: str, values: dict[str, str]) -> Analysis:
    located, line, analysis = _start(frames, "key")
    key = message.partition(":")[2].strip()
    nodes = on_line(located, line, (ast.Subscript,))
    node = marked_node(located, nodes, lambda n: isinstance(n.ctx, ast.Load))  # type: ignore[attr-defined]
    if node is None or not key:
        analysis.summary = f"Line {line} looked up a key that is not there ({key or 'no key'})."
        return analysis
    container = segment(located, node.value)  # type: ignore[attr-defined]
    analysis.facts.append(f"the key {key} is not in `{container}`")
    analysis.claims.append((container, f"no key {key}"))
    keys = _known_keys(located, node.value, line, values)  # type: ignore[attr-defined]
    summary = f"Line {line} reads `{segment(located, node)}`, but `{container}` has no key {key}."
    if keys is not None:
        shown = ", ".join(keys[:8]) + (" …" if len(keys) > 8 else "")
        analysis.facts.append(f"`{container}` has the keys {shown or '(none)'}")
        close = difflib.get_close_matches(key, keys, n=1)
        if close:
            analysis.facts.append(f"the closest existing key is {close[0]}")
            summary += f" Its keys are {shown}; {close[0]} is the closest."
        else:
            summary += f" Its keys are {shown or '(none)'}."
    analysis.summary = summary
    return analysis


def _known_keys(
    located: Located, container: ast.AST, line: int, values: dict[str, str]
) -> list[str] | None:
    """The keys of a dict: recorded at run time, or the dict literal it was assigned."""
    if not isinstance(container, ast.Name):
        return None
    if container.id in values:
        try:
            value = ast.literal_eval(values[container.id])
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = None
        if isinstance(value, dict):
            return [repr(k) for k in value]
    binding = last_binding(located, container.id, line)
    if binding is not None and isinstance(binding.value, ast.Dict):
        keys = binding.value.keys
        return [ast.unparse(k) for k in keys if k is not None]
    return None


def index_error(frames: list[Located], message: str, values: dict[str, str]) -> Analysis:
    located, line, analysis = _start(frames, "index")
    nodes = on_line(located, line, (ast.Subscript,))
    node = marked_node(located, nodes, lambda n: not isinstance(n.slice, ast.Slice))  # type: ignore[attr-defined]
    if not isinstance(node, ast.Subscript):
        analysis.summary = f"Line {line} used an index past the end of a sequence."
        return analysis
    container, index = segment(located, node.value), segment(located, node.slice)
    analysis.facts.append(f"the index `{index}` was out of range for `{container}`")
    analysis.claims.append((index, "out of range"))
    summary = f"Line {line} reads `{container}[{index}]`, but `{index}` is past the end."
    length = _known_length(located, node.value, line, values)
    if length is not None:
        analysis.facts.append(
            f"`{container}` has {length} items: valid indexes are 0 to {length - 1}"
            if length
            else f"`{container}` is empty: it has no valid index"
        )
        summary += f" `{container}` has {length} items."
    if index in values:
        analysis.facts.append(f"`{index}` was {values[index]}")
    past = _past_the_end(located, node.slice, node.value)
    if past:
        analysis.facts.append(past)
        summary += f" {past[0].upper()}{past[1:]}."
    summary += _loop_sentence(analysis, located, node.slice, line)
    analysis.summary = summary
    return analysis


def _past_the_end(located: Located, index: ast.AST, container: ast.AST) -> str:
    """A fact when the index is `len(xs)` plus a constant that is not negative (`1 // 2` is 0:
    `//` binds tighter than `-`)."""
    written = segment(located, container)

    def is_len(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", "") == "len"
            and len(node.args) == 1
            and segment(located, node.args[0]) == written
        )

    if is_len(index):
        return f"`len({written})` is one past the last index"
    if not (isinstance(index, ast.BinOp) and is_len(index.left)):
        return ""
    value = constant_value(index.right)
    if isinstance(index.op, ast.Add) and value is not None and value >= 0:
        return f"`{segment(located, index)}` is at least `len({written})`, past the last index"
    if isinstance(index.op, ast.Sub) and value == 0:
        part = segment(located, index.right)
        return (
            f"`{part}` is 0, so `{segment(located, index)}` is `len({written})`, one past the end"
        )
    return ""


def constant_value(node: ast.AST) -> float | None:
    """The value of an expression of number constants only (`1 // 2`), else None."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)  # type: ignore[arg-type]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = constant_value(node.operand)
        return -inner if inner is not None else None
    if not isinstance(node, ast.BinOp):
        return None
    left, right = constant_value(node.left), constant_value(node.right)
    operations = {
        ast.Add: lambda a, b: a + b,
        ast.Sub: lambda a, b: a - b,
        ast.Mult: lambda a, b: a * b,
        ast.FloorDiv: lambda a, b: a // b if b else None,
        ast.Div: lambda a, b: a / b if b else None,
    }
    operation = operations.get(type(node.op))
    if left is None or right is None or operation is None:
        return None
    return operation(left, right)


def _known_length(
    located: Located, container: ast.AST, line: int, values: dict[str, str]
) -> int | None:
    if not isinstance(container, ast.Name):
        return None
    if container.id in values:
        try:
            return len(ast.literal_eval(values[container.id]))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    binding = last_binding(located, container.id, line)
    value = binding.value if binding is not None else None
    return len(value.elts) if isinstance(value, (ast.List, ast.Tuple)) else None


def _loop_sentence(analysis: Analysis, located: Located, index: ast.AST, line: int) -> str:
    """`i` of `for i in range(len(xs) + 1)` reaches `len(xs)`: say where the index came from."""
    name = index.id if isinstance(index, ast.Name) else ""
    if not name and isinstance(index, ast.BinOp) and isinstance(index.left, ast.Name):
        name = index.left.id
    binding = last_binding(located, name, line) if name else None
    if binding is None or binding.via != "for" or binding.value is None:
        return ""
    written = segment(located, binding.value)
    analysis.facts.append(f"`{name}` runs over `{written}` (line {binding.line})")
    return f" `{name}` runs over `{written}` (line {binding.line})."


NONE_ATTRIBUTE = re.compile(r"'NoneType' object has no attribute '(\w+)'")


def none_attribute(frames: list[Located], message: str) -> Analysis:
    located, line, analysis = _start(frames, "none-attribute")
    found = NONE_ATTRIBUTE.search(message)
    attribute = found.group(1) if found else ""
    nodes = on_line(located, line, (ast.Attribute,))
    node = marked_node(located, nodes, lambda n: n.attr == attribute)  # type: ignore[attr-defined]
    if not isinstance(node, ast.Attribute):
        analysis.summary = f"Line {line} read `.{attribute}` of a value that was None."
        return analysis
    obj = segment(located, node.value)
    analysis.facts.append(f"`{obj}` was None when line {line} read `.{attribute}`")
    analysis.claims.append((obj, "None"))
    summary = f"`{obj}` was None on line {line}, so it has no `.{attribute}`."
    if isinstance(node.value, ast.Call):
        summary += _returns_none(analysis, located, node.value)
    elif isinstance(node.value, ast.Name):
        summary += _none_origin(analysis, frames, node.value.id, line)
    analysis.summary = summary
    return analysis


def _none_origin(analysis: Analysis, frames: list[Located], name: str, line: int) -> str:
    located = frames[-1]
    binding = last_binding(located, name, line)
    if binding is None:
        return ""
    if binding.via == "parameter":
        return _chain_into(analysis, frames, name, is_none_literal)
    if binding.value is None:
        return ""
    written = segment(located, binding.value)
    analysis.facts.append(f"`{name}` is assigned at line {binding.line}: `{name} = {written}`")
    sentence = f" `{name}` was set at line {binding.line} from `{written}`"
    if isinstance(binding.value, ast.Call):
        return sentence + "." + _returns_none(analysis, located, binding.value)
    return sentence + "."


def _returns_none(analysis: Analysis, located: Located, call: ast.Call) -> str:
    """Why a call can give None: an in-place method, or a workspace function that returns None
    (`return None`, a bare `return`, or no `return` on some path)."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in IN_PLACE:
        analysis.facts.append(f"`.{func.attr}()` changes its object in place and returns None")
        return f" `.{func.attr}()` returns None: it changes its object in place."
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    definition = _definition(located, name)
    if definition is None:
        return ""
    for node in ast.walk(definition):
        if isinstance(node, ast.Return) and (node.value is None or is_none_literal(node.value)):
            code = located.line_text(node.lineno)
            analysis.facts.append(f"`{name}` returns None at line {node.lineno} (`{code}`)")
            return f" `{name}` returns None at line {node.lineno}."
    if not isinstance(definition.body[-1], (ast.Return, ast.Raise)):
        end = definition.end_lineno or definition.lineno
        analysis.facts.append(f"`{name}` can reach its end (line {end}) without a `return`")
        return f" `{name}` can end without a `return` (line {end}), which returns None."
    return ""


def _definition(located: Located, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    tree = located.tree
    if tree is None or not name:
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    return None


ARGUMENTS = re.compile(
    r"(?P<name>[\w.]+)\(\) (?:takes .*positional arguments? but \d+ (?:was|were) given"
    r"|missing \d+ required .*arguments?: .+|got an unexpected keyword argument '\w+'"
    r"|got multiple values for argument '\w+')"
)


def arguments(frames: list[Located], message: str) -> Analysis:
    analysis = Analysis("arguments")
    found = ARGUMENTS.search(message)
    name = found.group("name").split(".")[-1] if found else ""
    definition = None
    for located in reversed(frames):
        definition = _definition(located, name)
        if definition is not None:
            signature = f"def {name}({ast.unparse(definition.args)})"
            analysis.facts.append(f"`{signature}` is at {located.where(definition.lineno)}")
            break
    located = frames[-1]
    line = located.frame.line
    calls = on_line(located, line, (ast.Call,))
    call = marked_node(located, calls, lambda n: _called_name(n) == name)
    summary = f"Line {line} calls `{name}` with arguments that do not match its definition."
    if isinstance(call, ast.Call):
        positional = len(call.args)
        keywords = [k.arg for k in call.keywords if k.arg]
        passes = f"{positional} positional argument{'s' if positional != 1 else ''}"
        if keywords:
            passes += " and " + ", ".join(f"`{k}=`" for k in keywords)
        analysis.facts.append(f"the call `{segment(located, call)}` passes {passes}")
        summary = f"Line {line} calls `{segment(located, call)}`, which passes {passes}"
        summary += f", but {message.split(': ', 1)[-1]}."
    if definition is not None and definition.args.args and definition.args.args[0].arg == "self":
        analysis.facts.append("`self` counts as the first positional argument of a method")
    analysis.summary = summary
    return analysis


def _called_name(node: ast.AST) -> str:
    func = node.func  # type: ignore[attr-defined]
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


UNBOUND = re.compile(r"(?:local variable '(\w+)' referenced|cannot access local variable '(\w+)')")


def unbound_local(frames: list[Located], message: str) -> Analysis:
    located, line, analysis = _start(frames, "unbound-local")
    found = UNBOUND.search(message)
    name = (found.group(1) or found.group(2)) if found else ""
    function = enclosing_function(located, line)
    if function is None or not name:
        analysis.summary = f"Line {line} read a local variable before it was assigned."
        return analysis
    local = [b for b in bindings(function, name) if b.via != "parameter"]
    summary = f"Line {line} reads `{name}` before `{function.name}` assigned it."
    if local:
        where = local[0].line
        code = located.line_text(where)
        analysis.facts.append(
            f"`{name}` is local to `{function.name}` because line {where} assigns it (`{code}`)"
        )
        after = " after" if where > line else ""
        summary += f" Line {where}{after} assigns `{name}`, which makes it local in all of it."
        analysis.claims.append((name, "local"))
    tree = located.tree
    module = [b for b in bindings(tree, name) if b.via != "parameter"] if tree else []
    if module:
        analysis.facts.append(
            f"a module-level `{name}` is assigned at line {module[0].line}; "
            f"`{function.name}` has no `global {name}`"
        )
    analysis.summary = summary
    return analysis


def recursion(frames: list[Located], message: str, repeated: int) -> Analysis:
    located, line, analysis = _start(frames, "recursion")
    same = [f for f in frames if f.frame.function == located.frame.function]
    times = f"{repeated + len(same)} times" if repeated else f"{len(same)} times in the traceback"
    analysis.facts.append(f"`{located.frame.function}` calls itself at {located.where()} ({times})")
    summary = f"`{located.frame.function}` keeps calling itself at line {line} and never stops."
    function = enclosing_function(located, line)
    calls = on_line(located, line, (ast.Call,))
    call = marked_node(located, calls, lambda n: _called_name(n) == located.frame.function)
    if function is not None and isinstance(call, ast.Call):
        parameters = [a.arg for a in function.args.args if a.arg not in ("self", "cls")]
        passed = [segment(located, a) for a in call.args]
        if passed and passed == parameters[: len(passed)]:
            analysis.facts.append(
                f"the call `{segment(located, call)}` passes its parameters unchanged"
            )
            summary += " It passes its parameters unchanged, so every call repeats the last."
        if not any(isinstance(n, ast.If) and n.lineno < line for n in ast.walk(function)):
            analysis.facts.append(f"`{function.name}` has no `if` before the call (no base case)")
    analysis.summary = summary
    return analysis


COMPARISONS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">"}


def assertion(frames: list[Located], message: str, values: dict[str, str]) -> Analysis:
    located, line, analysis = _start(frames, "assertion")
    nodes = on_line(located, line, (ast.Assert,))
    node = nodes[0] if nodes else None
    if not isinstance(node, ast.Assert):
        analysis.summary = f"The assertion on line {line} was false."
        return analysis
    test = node.test
    summary = f"The assertion on line {line} was false: `{segment(located, test)}`."
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right = segment(located, test.left), segment(located, test.comparators[0])
        op = COMPARISONS.get(type(test.ops[0]), ast.unparse(test).split()[1])
        analysis.facts.append(f"the assertion compares `{left}` with `{right}` using `{op}`")
        summary = f"The assertion on line {line} found `{left}` {op} `{right}` false."
        shown = _side_values(message, values, left, right)
        if shown:
            analysis.facts.append(shown)
            summary += f" {shown[0].upper()}{shown[1:]}."
    analysis.summary = summary
    return analysis


def _side_values(message: str, values: dict[str, str], left: str, right: str) -> str:
    """The two sides' values: from pytest's rewritten message (`assert 5 == 6`) or the run."""
    found = re.match(r"assert (.+?) (==|!=|<=|>=|<|>|in|not in) (.+)$", message.strip())
    if found:
        return f"`{left}` was {found.group(1)} and `{right}` was {found.group(3)}"
    known = [f"`{side}` was {values[side]}" for side in (left, right) if side in values]
    return " and ".join(known)


UNDEFINED = re.compile(r"name '(\w+)' is not defined")


def undefined_name(frames: list[Located], message: str) -> Analysis:
    located, line, analysis = _start(frames, "undefined-name")
    found = UNDEFINED.search(message)
    name = found.group(1) if found else ""
    tree = located.tree
    known: set[str] = set()
    for node in ast.walk(tree) if tree is not None else []:
        if isinstance(node, ast.Name | ast.arg):
            known.add(node.id if isinstance(node, ast.Name) else node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            known.add(node.name)
    known.discard(name)
    analysis.facts.append(f"no `{name}` is assigned, defined or imported in {located.display}")
    summary = f"Line {line} uses `{name}`, which nothing defines before it runs."
    close = difflib.get_close_matches(name, sorted(known), n=2)
    if close:
        shown = ", ".join(f"`{c}`" for c in close)
        analysis.facts.append(f"names in the file that look alike: {shown}")
        summary += f" Did you mean {shown}?"
    analysis.summary = summary
    return analysis


OPERAND = re.compile(
    r"unsupported operand type\(s\) for (?P<op>\S+): '(?P<left>\w+)' and '(?P<right>\w+)'"
    r"|can only concatenate (?P<left2>\w+) \(not \"(?P<right2>\w+)\"\) to \w+"
)


def operand_types(frames: list[Located], message: str) -> Analysis:
    located, line, analysis = _start(frames, "operand-types")
    found = OPERAND.search(message)
    if found is None:
        return analysis
    op = found.group("op") or "+"
    left_type = found.group("left") or found.group("left2")
    right_type = found.group("right") or found.group("right2")
    nodes = on_line(located, line, (ast.BinOp, ast.AugAssign))
    node = marked_node(located, nodes, lambda n: True)
    if isinstance(node, ast.BinOp):
        left, right = segment(located, node.left), segment(located, node.right)
        analysis.facts.append(
            f"`{left}` (left of `{op}`) was {left_type}; `{right}` (right) was {right_type}"
        )
        analysis.claims += [(left, left_type), (right, right_type)]
        analysis.summary = (
            f"Line {line} applies `{op}` to `{left}`, a {left_type}, and `{right}`, a "
            f"{right_type}: Python does not define `{op}` for that pair."
        )
    return analysis


def analyse(
    frames: list[Located], message: str, repeated: int = 0, values: dict[str, str] | None = None
) -> Analysis:
    """The facts about an error raised in `frames[-1]` (workspace frames, outermost first);
    `values` are the raising frame's local values as recorded by a sandboxed run (reprs)."""
    values = values or {}
    name, _, detail = message.partition(":")
    name, detail = name.strip().split(".")[-1], detail.strip()
    if name == "ZeroDivisionError":
        analysis = zero_division(frames, detail)
    elif name == "KeyError":
        analysis = key_error(frames, message, values)
    elif name == "IndexError":
        analysis = index_error(frames, detail, values)
    elif name == "AttributeError" and NONE_ATTRIBUTE.search(detail):
        analysis = none_attribute(frames, detail)
    elif name == "TypeError" and ARGUMENTS.search(detail):
        analysis = arguments(frames, detail)
    elif name in ("UnboundLocalError", "NameError") and UNBOUND.search(detail):
        analysis = unbound_local(frames, detail)
    elif name == "RecursionError":
        analysis = recursion(frames, detail, repeated)
    elif name == "AssertionError":
        analysis = assertion(frames, detail, values)
    elif name == "NameError" and UNDEFINED.search(detail):
        analysis = undefined_name(frames, detail)
    elif name == "TypeError" and OPERAND.search(detail):
        analysis = operand_types(frames, detail)
    else:
        analysis = Analysis("other")
    frame = frames[-1].frame
    if frame.marked and " ".join(frame.marked.split()) != " ".join(frame.source.split()):
        analysis.facts.insert(0, f"the traceback marks `{frame.marked}` on line {frame.line}")
    return analysis
