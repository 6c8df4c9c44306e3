"""Pytrees: nested containers of arrays, flattened to a list of leaves plus a ``PyTreeDef``.

A pytree is a leaf or a *node*: a value whose type is in the node registry. Built in:

* ``None`` — a node with no children (so it holds no leaves);
* ``tuple``, ``list``;
* ``dict`` — children in sorted key order, keys kept in the treedef, unflatten gives a dict;
  ``collections.OrderedDict`` keeps insertion order, ``collections.defaultdict`` its factory;
* named tuples (any ``tuple`` subclass with ``_fields``) — fields in order;
* dataclass instances — fields in declaration order as children, except fields declared with
  ``metadata={"static": True}`` (see :func:`static_field`), whose values go in the treedef
  (they must be hashable). Unflattening builds the instance with ``object.__new__`` and sets
  the fields directly: ``__init__``/``__post_init__`` are *not* re-run (as in Equinox), so a
  tree of tracers or of ``None`` placeholders can be rebuilt.

Anything else is a leaf, unless registered with :func:`register_pytree_node`. Types found
in the registry win over the automatic named-tuple/dataclass handling.

``PyTreeDef`` is immutable, hashable and compared with ``==``: use it as a cache key.

Model: ``jax.tree_util`` (flatten/unflatten, ``flatten_up_to`` for ``tree_map`` over several
trees) and Equinox ``partition``/``combine``.
"""

import collections
import dataclasses
import functools

from .errors import FnxError

__all__ = [
    "PyTreeDef", "PyTreeError", "register_pytree_node", "static_field",
    "tree_flatten", "tree_unflatten", "tree_leaves", "tree_structure", "tree_map",
    "tree_all", "tree_reduce", "treedef_children", "treedef_is_leaf", "tree_transpose",
    "partition", "combine", "is_array",
]


class PyTreeError(FnxError, ValueError):
    """Two trees that should have the same structure do not, or a leaf count is wrong."""


# --- the registry --------------------------------------------------------------------------


class _NodeType:
    __slots__ = ("type", "flatten", "unflatten", "name", "builtin")

    def __init__(self, typ, flatten, unflatten, name=None, builtin=False):
        self.type = typ
        self.flatten = flatten          # x -> (children, aux)
        self.unflatten = unflatten      # (aux, children) -> x
        self.name = name or typ.__name__
        self.builtin = builtin


_registry = {}        # type -> _NodeType, explicit registrations and builtins
_dispatch = {}        # type -> _NodeType or None: cache of the lookup (cleared on registration)


def register_pytree_node(nodetype, flatten_fn, unflatten_fn):
    """Register ``nodetype`` as a pytree node.

    ``flatten_fn(x) -> (children, aux_data)``: ``children`` an iterable of subtrees and
    ``aux_data`` any *hashable* value describing the rest (it is stored in the treedef and
    compared with ``==``). ``unflatten_fn(aux_data, children) -> x`` rebuilds the node
    (``children`` may hold tracers, ``None`` placeholders or other objects: do not validate).

    Example::

        register_pytree_node(Point, lambda p: ((p.x, p.y), None), lambda aux, ch: Point(*ch))
    """
    if not isinstance(nodetype, type):
        raise TypeError(f"register_pytree_node: expected a type, got {nodetype!r}")
    if nodetype in _registry and _registry[nodetype].builtin:
        raise ValueError(f"register_pytree_node: {nodetype.__name__} is a built-in pytree node "
                         f"and cannot be re-registered")
    _registry[nodetype] = _NodeType(nodetype, flatten_fn, unflatten_fn)
    _dispatch.clear()
    return nodetype


def _builtin(typ, flatten, unflatten, name=None):
    _registry[typ] = _NodeType(typ, flatten, unflatten, name, builtin=True)


def _sorted_keys(d):
    try:
        return tuple(sorted(d))
    except TypeError:  # keys of mixed, unorderable types: a deterministic order all the same
        return tuple(sorted(d, key=lambda k: (type(k).__module__, type(k).__qualname__, repr(k))))


def _dict_flatten(d):
    keys = _sorted_keys(d)
    return [d[k] for k in keys], keys


def _defaultdict_flatten(d):
    keys = _sorted_keys(d)
    return [d[k] for k in keys], (d.default_factory, keys)


_builtin(type(None), lambda x: ((), None), lambda aux, ch: None, name="None")
_builtin(tuple, lambda x: (x, None), lambda aux, ch: tuple(ch))
_builtin(list, lambda x: (x, None), lambda aux, ch: list(ch))
_builtin(dict, _dict_flatten, lambda keys, ch: dict(zip(keys, ch)))
_builtin(collections.OrderedDict, lambda d: (list(d.values()), tuple(d)),
         lambda keys, ch: collections.OrderedDict(zip(keys, ch)))
_builtin(collections.defaultdict, _defaultdict_flatten,
         lambda aux, ch: collections.defaultdict(aux[0], zip(aux[1], ch)))


def static_field(**kwargs):
    """A ``dataclasses.field`` whose value is part of the treedef (not a leaf): hyperparameters,
    activation functions, shapes. Example: ``act: object = static_field(default=None)``.

    >>> dict(fnx.tree.static_field(default='relu').metadata)
    {'static': True}
    """
    metadata = dict(kwargs.pop("metadata", None) or {})
    metadata["static"] = True
    return dataclasses.field(metadata=metadata, **kwargs)


def _namedtuple_node(typ):
    return _NodeType(typ, lambda x: (tuple(x), None), lambda aux, ch: typ(*ch))


def _dataclass_node(typ):
    fields = [f for f in dataclasses.fields(typ)]
    dynamic = tuple(f.name for f in fields if not f.metadata.get("static", False))
    static = tuple(f.name for f in fields if f.metadata.get("static", False))

    def flatten(x):
        return [getattr(x, n) for n in dynamic], tuple(getattr(x, n) for n in static)

    def unflatten(aux, children):
        obj = object.__new__(typ)
        for n, v in zip(dynamic, children):
            object.__setattr__(obj, n, v)
        for n, v in zip(static, aux):
            object.__setattr__(obj, n, v)
        return obj

    return _NodeType(typ, flatten, unflatten)


def _lookup(typ):
    try:
        return _dispatch[typ]
    except KeyError:
        pass
    node = _registry.get(typ)
    if node is None:
        if issubclass(typ, tuple) and hasattr(typ, "_fields"):
            node = _namedtuple_node(typ)
        elif dataclasses.is_dataclass(typ):
            node = _dataclass_node(typ)
    _dispatch[typ] = node
    return node


# --- PyTreeDef -----------------------------------------------------------------------------


class PyTreeDef:
    """The structure of a pytree: node types, aux data and the positions of the leaves.

    ``node`` is ``None`` for a leaf. Immutable, hashable, compared structurally.
    """

    __slots__ = ("node", "aux", "children", "num_leaves", "num_nodes", "_hash")

    def __init__(self, node, aux, children):
        self.node = node
        self.aux = aux
        self.children = tuple(children)
        if node is None:
            self.num_leaves, self.num_nodes = 1, 1
        else:
            self.num_leaves = sum(c.num_leaves for c in self.children)
            self.num_nodes = 1 + sum(c.num_nodes for c in self.children)
        self._hash = None

    # structural identity
    def _key(self):
        return (None if self.node is None else self.node.type, self.aux)

    def __eq__(self, other):
        if self is other:
            return True
        if not isinstance(other, PyTreeDef):
            return NotImplemented
        if self.num_leaves != other.num_leaves or self.num_nodes != other.num_nodes:
            return False
        if self._hash is not None and other._hash is not None and self._hash != other._hash:
            return False
        return self._key() == other._key() and self.children == other.children

    def __hash__(self):
        if self._hash is None:
            try:
                self._hash = hash((self._key(), self.children))
            except TypeError as e:
                raise TypeError(
                    f"PyTreeDef: the aux data of a {self.node.name} node is not hashable "
                    f"({e}); make flatten return hashable aux data (tuples, not lists/arrays)"
                ) from None
        return self._hash

    # the public surface
    def unflatten(self, leaves):
        """Rebuild a tree of this structure from ``leaves`` (any iterable, in flatten order)."""
        leaves = list(leaves)
        if len(leaves) != self.num_leaves:
            raise PyTreeError(
                f"unflatten: {self!r} expects {self.num_leaves} leaves, got {len(leaves)}")
        it = iter(leaves)
        return self._build(it)

    def _build(self, it):
        if self.node is None:
            return next(it)
        return self.node.unflatten(self.aux, [c._build(it) for c in self.children])

    def flatten_up_to(self, tree, what="tree"):
        """The subtrees of ``tree`` at the leaf positions of this treedef (``tree`` must have
        this structure down to those positions). Raises PyTreeError naming the mismatch."""
        out = []
        self._flatten_up_to(tree, out, (), tree, what)
        return out

    def _flatten_up_to(self, x, out, path, whole, what):
        if self.node is None:
            out.append(x)
            return
        node = _lookup(type(x))
        if node is not self.node and (node is None or node.type is not self.node.type):
            got = "a leaf" if node is None else f"a {node.name}"
            self._mismatch(whole, path, what, f"expected a {self.node.name}, got {got} "
                           f"({_short(x)})")
        children, aux = node.flatten(x)
        children = list(children)
        if aux != self.aux or len(children) != len(self.children):
            self._mismatch(whole, path, what,
                           f"{self.node.name} node differs: expected {_node_desc(self)}, got "
                           f"{_node_desc(PyTreeDef(node, aux, [_LEAF] * len(children)))}")
        for i, (c, sub) in enumerate(zip(self.children, children)):
            c._flatten_up_to(sub, out, path + (_path_entry(self, i),), whole, what)

    def _mismatch(self, whole, path, what, detail):
        loc = "".join(path) or "the root"
        try:
            other = repr(tree_structure(whole))
        except Exception:  # pragma: no cover - defensive
            other = "?"
        raise PyTreeError(
            f"{what} has structure {other}, which does not match {self!r}: at {loc} {detail}; "
            f"pass trees of the same structure"
        )

    def __repr__(self):
        return f"PyTreeDef({self._repr()})"

    def _repr(self):
        if self.node is None:
            return "*"
        kids = [c._repr() for c in self.children]
        t = self.node.type
        if t is type(None):
            return "None"
        if t is tuple:
            return "(" + ", ".join(kids) + ("," if len(kids) == 1 else "") + ")"
        if t is list:
            return "[" + ", ".join(kids) + "]"
        if t is dict:
            return "{" + ", ".join(f"{k!r}: {v}" for k, v in zip(self.aux, kids)) + "}"
        if t is collections.OrderedDict:
            return "OrderedDict({" + ", ".join(f"{k!r}: {v}" for k, v in zip(self.aux, kids)) + "})"
        if hasattr(t, "_fields") and issubclass(t, tuple) and t not in _registry:
            return f"{t.__name__}(" + ", ".join(f"{f}={v}" for f, v in zip(t._fields, kids)) + ")"
        aux = "" if self.aux is None or self.aux == () else f"[{self.aux!r}]"
        return f"{self.node.name}{aux}(" + ", ".join(kids) + ")"


_LEAF = PyTreeDef(None, None, ())


def _path_entry(td, i):
    t = td.node.type
    if t in (dict, collections.OrderedDict):
        return f"[{td.aux[i]!r}]"
    if t is collections.defaultdict:
        return f"[{td.aux[1][i]!r}]"
    if hasattr(t, "_fields") and issubclass(t, tuple):
        return f".{t._fields[i]}"
    if dataclasses.is_dataclass(t) and t not in _registry:
        dyn = [f.name for f in dataclasses.fields(t) if not f.metadata.get("static", False)]
        return f".{dyn[i]}"
    return f"[{i}]"


def _node_desc(td):
    if td.node.type in (dict, collections.OrderedDict):
        return f"keys {list(td.aux)}"
    desc = f"{len(td.children)} children"
    if td.aux is not None and td.aux != ():
        desc += f" with aux {td.aux!r}"
    return desc


def _short(x, n=60):
    r = repr(x)
    return r if len(r) <= n else r[: n - 3] + "..."


# --- flatten / unflatten -------------------------------------------------------------------


def tree_flatten(tree, is_leaf=None):
    """``(leaves, treedef)`` of ``tree``; ``is_leaf(x) -> bool`` stops the recursion at ``x``.

    Example: ``tree_flatten({"b": 1, "a": (2, None)})`` ->
    ``([2, 1], PyTreeDef({'a': (*, None), 'b': *}))``.
    """
    leaves = []
    return leaves, _flatten(tree, leaves, is_leaf)


def _flatten(x, leaves, is_leaf):
    if is_leaf is not None and is_leaf(x):
        leaves.append(x)
        return _LEAF
    node = _lookup(type(x))
    if node is None:
        leaves.append(x)
        return _LEAF
    children, aux = node.flatten(x)
    if not node.builtin and aux is not None:
        try:
            hash(aux)
        except TypeError:
            raise TypeError(
                f"tree_flatten: the aux data of a {node.name} node is not hashable: "
                f"{_short(aux)}; make its flatten function return hashable aux data "
                f"(tuples, not lists or arrays), or mark such dataclass fields non-static"
            ) from None
    return PyTreeDef(node, aux, [_flatten(c, leaves, is_leaf) for c in children])


def tree_unflatten(treedef, leaves):
    """Rebuild a tree from its treedef and leaves. Example: ``tree_unflatten(td, [1, 2])``."""
    return treedef.unflatten(leaves)


def tree_leaves(tree, is_leaf=None):
    """The leaves of ``tree`` in flatten order.
    Example: ``tree_leaves([1, (2, None)])`` -> ``[1, 2]``."""
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree, is_leaf=None):
    """The treedef of ``tree``. Example: ``tree_structure((1, [2]))`` -> ``PyTreeDef((*, [*]))``."""
    return tree_flatten(tree, is_leaf)[1]


def treedef_children(treedef):
    """The treedefs of the root's children.
    Example: ``treedef_children(tree_structure((1, [2])))``.

    >>> fnx.tree.treedef_children(fnx.tree.structure((1, [2])))
    [PyTreeDef(*), PyTreeDef([*])]
    """
    return list(treedef.children)


def treedef_is_leaf(treedef):
    """Whether ``treedef`` is the structure of a single leaf.

    >>> [fnx.tree.treedef_is_leaf(fnx.tree.structure(t)) for t in (1, [1])]
    [True, False]
    """
    return treedef.node is None


def tree_map(f, tree, *rest, is_leaf=None):
    """Apply ``f`` leafwise: ``f(leaf, *leaves_of_rest)``; ``rest`` trees must have
    ``tree``'s structure (their subtrees at ``tree``'s leaf positions are passed whole).

    Example: ``tree_map(lambda a, b: a + b, (1, [2]), (10, [20]))`` -> ``(11, [22])``.
    """
    leaves, treedef = tree_flatten(tree, is_leaf)
    if not rest:
        return treedef.unflatten([f(x) for x in leaves])
    others = [treedef.flatten_up_to(r, what=f"tree_map: tree argument {i + 1}")
              for i, r in enumerate(rest)]
    return treedef.unflatten([f(*xs) for xs in zip(leaves, *others)])


def tree_all(tree, is_leaf=None):
    """Whether every leaf is truthy. Example: ``tree_all([True, (1, None)])`` -> ``True``."""
    return all(bool(x) for x in tree_leaves(tree, is_leaf))


_NO_INIT = object()


def tree_reduce(f, tree, initializer=_NO_INIT, is_leaf=None):
    """``functools.reduce(f, leaves)``.
    Example: ``tree_reduce(operator.add, [1, (2, 3)])`` -> ``6``."""
    leaves = tree_leaves(tree, is_leaf)
    if initializer is _NO_INIT:
        if not leaves:
            raise PyTreeError("tree_reduce: a tree with no leaves and no initializer; "
                              "pass initializer=")
        return functools.reduce(f, leaves)
    return functools.reduce(f, leaves, initializer)


def tree_transpose(outer_treedef, inner_treedef, tree):
    """Turn a tree of structure outer(inner(leaves)) into inner(outer(leaves)).

    Example: ``tree_transpose(tree_structure([0, 0]), tree_structure((0, 0)), [(1, 2), (3, 4)])``
    -> ``([1, 3], [2, 4])``.

    >>> fnx.tree.transpose(fnx.tree.structure([0, 0]), fnx.tree.structure((0, 0)), [(1, 2), (3, 4)])
    ([1, 3], [2, 4])
    """
    n_in = inner_treedef.num_leaves
    subtrees = outer_treedef.flatten_up_to(tree, what="tree_transpose: tree")
    flat = [inner_treedef.flatten_up_to(s, what="tree_transpose: inner tree") for s in subtrees]
    columns = [outer_treedef.unflatten([row[j] for row in flat]) for j in range(n_in)]
    return inner_treedef.unflatten(columns)


# --- Equinox-style filtering ---------------------------------------------------------------


def is_array(x):
    """Whether ``x`` is an fnx Array (concrete or traced). Useful as a ``partition`` filter.

    >>> fnx.tree.is_array(fnp.ones(2)), fnx.tree.is_array(1.0)
    (True, False)
    """
    from .array import Array

    return isinstance(x, Array)


def _is_none(x):
    return x is None


def partition(tree, predicate, replace=None, is_leaf=None):
    """Split ``tree`` into ``(selected, rest)`` of the same structure: ``selected`` keeps the
    leaves where ``predicate(leaf)`` is true and has ``replace`` (``None``) elsewhere; ``rest``
    the opposite. ``predicate`` may also be a pytree (a prefix of ``tree``) of bools or
    callables, applied to the matching subtrees. Undo with :func:`combine`.

    Example: ``partition([1, "a"], lambda x: isinstance(x, int))`` -> ``([1, None], [None, "a"])``.
    """
    if callable(predicate):
        mask = tree_map(lambda x: bool(predicate(x)), tree, is_leaf=is_leaf)
    else:
        def expand(spec, sub):
            return tree_map(lambda x: bool(spec(x) if callable(spec) else spec), sub,
                            is_leaf=is_leaf)

        mask = tree_map(expand, predicate, tree, is_leaf=_is_none)
    leaves, treedef = tree_flatten(tree, is_leaf)
    mask_leaves = treedef.flatten_up_to(mask, what="partition: predicate tree")
    selected = [x if m else replace for x, m in zip(leaves, mask_leaves)]
    rest = [replace if m else x for x, m in zip(leaves, mask_leaves)]
    return treedef.unflatten(selected), treedef.unflatten(rest)


def combine(*trees, is_leaf=None):
    """Merge trees produced by :func:`partition`: at each leaf position take the first
    non-``None`` leaf. Example: ``combine([1, None], [None, "a"])`` -> ``[1, "a"]``."""
    if not trees:
        raise TypeError("combine: expected at least one tree")

    def leaf(x):
        return x is None or (is_leaf is not None and is_leaf(x))

    def pick(*xs):
        for x in xs:
            if x is not None:
                return x
        return None

    return tree_map(pick, *trees, is_leaf=leaf)
