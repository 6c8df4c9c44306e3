"""``fnx.tree``: work with pytrees (nested tuples, lists, dicts, named tuples, dataclasses,
``None`` and registered node types, with arrays or anything else at the leaves).

    >>> import fnx
    >>> fnx.tree.map(lambda x: x * 2, {"w": 1, "b": (2, None)})
    {'b': (4, None), 'w': 2}
    >>> leaves, td = fnx.tree.flatten({"w": 1, "b": (2, None)})
    >>> leaves, td
    ([2, 1], PyTreeDef({'b': (*, None), 'w': *}))
    >>> fnx.tree.unflatten(td, [20, 10])
    {'b': (20, None), 'w': 10}

Rules (see ``fnx.core.pytree`` for the full description): ``None`` is a node without leaves;
dict children go in sorted key order; dataclass fields are children unless declared with
:func:`static_field` (then they are part of the treedef).
"""

from .core.pytree import (  # noqa: F401
    PyTreeDef,
    PyTreeError,
    is_array,
    static_field,
    tree_transpose as transpose,
    treedef_children,
    treedef_is_leaf,
)
from .core import pytree as _pt

__all__ = [
    "map", "leaves", "flatten", "unflatten", "structure", "register_node", "all", "reduce",
    "partition", "combine", "transpose", "static_field", "is_array", "PyTreeDef", "PyTreeError",
    "treedef_children", "treedef_is_leaf",
]


def map(f, tree, *rest, is_leaf=None):  # noqa: A001
    """Apply ``f`` to every leaf (and the matching leaves of ``rest``, which must have the same
    structure). Example: ``fnx.tree.map(lambda a, b: a + b, [1, 2], [10, 20])`` -> ``[11, 22]``.

    >>> fnx.tree.map(lambda a, b: a + b, [1, {'k': 2}], [10, {'k': 20}])
    [11, {'k': 22}]
    """
    return _pt.tree_map(f, tree, *rest, is_leaf=is_leaf)


def leaves(tree, is_leaf=None):
    """The leaves in flatten order.
    Example: ``fnx.tree.leaves({"b": 1, "a": [2, None]})`` -> ``[2, 1]``.

    >>> fnx.tree.leaves({'b': 1, 'a': [2, None]})
    [2, 1]
    """
    return _pt.tree_leaves(tree, is_leaf)


def flatten(tree, is_leaf=None):
    """``(leaves, treedef)``.
    Example: ``fnx.tree.flatten((1, [2]))`` -> ``([1, 2], PyTreeDef((*, [*])))``.

    >>> fnx.tree.flatten((1, [2]))
    ([1, 2], PyTreeDef((*, [*])))
    """
    return _pt.tree_flatten(tree, is_leaf)


def unflatten(treedef, leaves):  # noqa: F811
    """Rebuild a tree.
    Example: ``fnx.tree.unflatten(fnx.tree.structure((0, [0])), [1, 2])`` -> ``(1, [2])``.

    >>> fnx.tree.unflatten(fnx.tree.structure((0, [0])), [1, 2])
    (1, [2])
    """
    return _pt.tree_unflatten(treedef, leaves)


def structure(tree, is_leaf=None):
    """The treedef (hashable).
    Example: ``fnx.tree.structure({"a": 1})`` -> ``PyTreeDef({'a': *})``.

    >>> fnx.tree.structure({'a': 1})
    PyTreeDef({'a': *})
    """
    return _pt.tree_structure(tree, is_leaf)


def register_node(nodetype, flatten_fn, unflatten_fn):
    """Register a node type: ``flatten_fn(x) -> (children, hashable_aux)``,
    ``unflatten_fn(aux, children) -> x``.

    Example::

        fnx.tree.register_node(Point, lambda p: ((p.x, p.y), None), lambda aux, ch: Point(*ch))

    >>> Pair = type('Pair', (tuple,), {})
    >>> _ = fnx.tree.register_node(Pair, lambda p: (tuple(p), None), lambda aux, ch: Pair(ch))
    >>> fnx.tree.leaves(Pair((1, [2, 3])))
    [1, 2, 3]
    """
    return _pt.register_pytree_node(nodetype, flatten_fn, unflatten_fn)


def all(tree, is_leaf=None):  # noqa: A001
    """Whether every leaf is truthy. Example: ``fnx.tree.all([True, (1, None)])`` -> ``True``.

    >>> fnx.tree.all([True, (1, None)])
    True
    """
    return _pt.tree_all(tree, is_leaf)


def reduce(f, tree, initializer=_pt._NO_INIT, is_leaf=None):
    """Fold the leaves with ``f``.
    Example: ``fnx.tree.reduce(operator.add, [1, (2, 3)])`` -> ``6``.

    >>> fnx.tree.reduce(lambda a, b: a + b, [1, (2, 3)])
    6
    """
    return _pt.tree_reduce(f, tree, initializer, is_leaf)


def partition(tree, predicate, replace=None, is_leaf=None):
    """Split into ``(selected, rest)`` with ``None`` in place of the leaves not kept.
    Example: ``fnx.tree.partition([1, "a"], fnx.tree.is_array)``; undo with ``combine``.

    >>> arrays, rest = fnx.tree.partition([fnp.ones(2), 'a'], fnx.tree.is_array)
    >>> rest
    [None, 'a']
    """
    return _pt.partition(tree, predicate, replace, is_leaf)


def combine(*trees, is_leaf=None):
    """Merge partitioned trees (first non-``None`` leaf wins).
    Example: ``fnx.tree.combine([1, None], [None, "a"])`` -> ``[1, 'a']``.

    >>> fnx.tree.combine([1, None], [None, 'a'])
    [1, 'a']
    """
    return _pt.combine(*trees, is_leaf=is_leaf)
