import collections
import dataclasses
import operator
from typing import NamedTuple

import numpy as np
import pytest

import fnx
import fnx.tree as tree
from fnx.core import pytree as pt


class Pair(NamedTuple):
    a: object
    b: object


@dataclasses.dataclass
class DC:
    w: object
    b: object
    act: object = tree.static_field(default="relu")


@dataclasses.dataclass(frozen=True)
class Frozen:
    x: object

    def __post_init__(self):
        if self.x is None:
            raise ValueError("validation that must not run on unflatten")


class Point:
    def __init__(self, x, y, tag):
        self.x, self.y, self.tag = x, y, tag

    def __eq__(self, o):
        return type(o) is Point and (self.x, self.y, self.tag) == (o.x, o.y, o.tag)


tree.register_node(Point, lambda p: ((p.x, p.y), p.tag), lambda tag, ch: Point(ch[0], ch[1], tag))


def _eq(a, b):
    la, ta = tree.flatten(a)
    lb, tb = tree.flatten(b)
    return ta == tb and all(
        np.array_equal(np.asarray(x), np.asarray(y)) if isinstance(x, (np.ndarray, fnx.Array))
        else x == y for x, y in zip(la, lb))


NESTED = [
    1,
    None,
    (),
    [],
    {},
    (1, 2.5),
    [1, [2, (3, None)]],
    {"z": 1, "a": (2, 3), "m": None},
    Pair(1, [2, 3]),
    DC(w=np.ones(2), b=(1, 2)),
    Point(1, {"q": 2, "p": 3}, "tag"),
    {"b": [Pair(None, DC(1, 2, act="tanh"))], "a": (Point(4, 5, 0),)},
    collections.OrderedDict([("z", 1), ("a", 2)]),
    collections.defaultdict(list, {"y": 1, "x": 2}),
]


@pytest.mark.parametrize("t", NESTED, ids=range(len(NESTED)))
def test_round_trip(t):
    leaves, td = tree.flatten(t)
    assert len(leaves) == td.num_leaves
    back = tree.unflatten(td, leaves)
    assert type(back) is type(t)
    assert _eq(back, t)
    assert tree.structure(back) == td
    assert hash(tree.structure(back)) == hash(td)


def test_leaf_order_and_repr():
    t = {"z": 1, "a": (2, None), "m": [3]}
    leaves, td = tree.flatten(t)
    assert leaves == [2, 3, 1]
    assert repr(td) == "PyTreeDef({'a': (*, None), 'm': [*], 'z': *})"
    back = tree.unflatten(td, leaves)
    assert back == t and isinstance(back, dict)
    assert repr(tree.structure(Pair(1, 2))) == "PyTreeDef(Pair(a=*, b=*))"
    assert repr(tree.structure((1,))) == "PyTreeDef((*,))"
    assert "Point['t']" in repr(tree.structure(Point(1, 2, "t")))


def test_none_has_no_leaves():
    assert tree.leaves(None) == []
    assert tree.leaves([None, (None,)]) == []
    assert tree.structure(None).num_leaves == 0
    assert tree.unflatten(tree.structure([None, 1]), [5]) == [None, 5]


def test_leaf_and_arrays_are_leaves():
    x = fnx.numpy.asarray([1.0, 2.0])
    leaves, td = tree.flatten(x)
    assert leaves[0] is x and pt.treedef_is_leaf(td)
    assert tree.leaves({"x": x, "n": np.zeros(3)})[1] is x


def test_treedef_equality_and_hash():
    a = tree.structure({"a": 1, "b": [2, 3]})
    b = tree.structure({"b": [7, 8], "a": "x"})  # key insertion order does not matter
    assert a == b and hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a != tree.structure({"a": 1, "b": (2, 3)})
    assert a != tree.structure({"a": 1, "c": [2, 3]})
    assert tree.structure([1, 2]) != tree.structure([1, 2, 3])
    assert tree.structure(Pair(1, 2)) != tree.structure((1, 2))
    assert tree.structure(DC(1, 2, "relu")) != tree.structure(DC(1, 2, "tanh"))
    assert tree.structure(Point(1, 2, "a")) != tree.structure(Point(1, 2, "b"))
    cache = {a: "hit"}
    assert cache[b] == "hit"


def test_dataclass_static_fields_and_no_post_init():
    d = DC(w=1, b=2, act="gelu")
    leaves, td = tree.flatten(d)
    assert leaves == [1, 2]
    out = tree.unflatten(td, [10, 20])
    assert out == DC(10, 20, "gelu")
    f = Frozen(1)
    g = tree.map(lambda x: None if x == 1 else x, f, is_leaf=lambda x: x is None)
    assert g.x is None  # __post_init__ did not run, frozen dataclass rebuilt


def test_custom_node_unhashable_aux_errors():
    class Bad:
        def __init__(self, x):
            self.x = x

    tree.register_node(Bad, lambda b: ((b.x,), [1, 2]), lambda aux, ch: Bad(ch[0]))
    with pytest.raises(TypeError, match="aux data of a Bad node is not hashable"):
        tree.flatten(Bad(1))


def test_register_builtin_refused_and_registry_wins_over_dataclass():
    with pytest.raises(ValueError, match="built-in pytree node"):
        tree.register_node(dict, lambda d: ((), None), lambda a, c: {})

    @dataclasses.dataclass
    class Reg:
        a: object
        b: object

    assert tree.leaves(Reg(1, 2)) == [1, 2]
    tree.register_node(Reg, lambda r: ((r.b,), r.a), lambda a, ch: Reg(a, ch[0]))
    assert tree.leaves(Reg(1, 2)) == [2]  # the dispatch cache is cleared on registration


def test_tree_map_multiple_and_prefix():
    assert tree.map(lambda a, b: a + b, (1, [2]), (10, [20])) == (11, [22])
    assert tree.map(lambda x: x * 2, {"a": 1, "b": None}) == {"a": 2, "b": None}
    # rest trees may be deeper than the first: subtrees are passed whole
    assert tree.map(lambda a, b: (a, b), [1, 2], [(3, 4), {"k": 5}]) == [(1, (3, 4)), (2, {"k": 5})]
    d = tree.map(lambda a, b: a * b, DC(2, 3, "x"), DC(5, 7, "x"))
    assert d == DC(10, 21, "x")


@pytest.mark.parametrize("a, b, msg", [
    ((1, 2), [1, 2], r"at the root expected a tuple, got a list"),
    ((1, 2), (1, 2, 3), r"tuple node differs"),
    ({"a": 1}, {"b": 1}, r"expected keys \['a'\], got keys \['b'\]"),
    ({"a": (1, None)}, {"a": (1, 2)}, r"at \['a'\]\[1\] expected a None, got a leaf"),
    ([1, None], [1, 2], r"expected a None"),
    (Pair(1, (2, 3)), Pair(1, 2), r"at \.b expected a tuple, got a leaf"),
    (DC(1, 2, "a"), DC(1, 2, "b"), r"DC node differs"),
])
def test_tree_map_mismatch_errors(a, b, msg):
    with pytest.raises(tree.PyTreeError, match=msg):
        tree.map(lambda x, y: x, a, b)
    with pytest.raises(ValueError, match="tree argument 1 has structure PyTreeDef"):
        tree.map(lambda x, y: x, a, b)


def test_unflatten_wrong_leaf_count():
    td = tree.structure([1, (2, 3)])
    with pytest.raises(tree.PyTreeError, match="expects 3 leaves, got 2"):
        td.unflatten([1, 2])


def test_is_leaf():
    t = {"a": (1, 2), "b": [3, (4, 5)]}
    leaves = tree.leaves(t, is_leaf=lambda x: isinstance(x, tuple))
    assert leaves == [(1, 2), 3, (4, 5)]
    out = tree.map(lambda x: sum(x) if isinstance(x, tuple) else x, t,
                   is_leaf=lambda x: isinstance(x, tuple))
    assert out == {"a": 3, "b": [3, 9]}
    assert tree.leaves([None, 1], is_leaf=lambda x: x is None) == [None, 1]


def test_all_reduce_transpose_children():
    assert tree.all([True, (1, None)])
    assert not tree.all({"a": True, "b": (0,)})
    assert tree.all([])
    assert tree.reduce(operator.add, [1, (2, 3)]) == 6
    assert tree.reduce(operator.add, [], 10) == 10
    with pytest.raises(tree.PyTreeError, match="initializer"):
        tree.reduce(operator.add, [None])
    out = tree.transpose(tree.structure([0, 0]), tree.structure((0, 0)), [(1, 2), (3, 4)])
    assert out == ([1, 3], [2, 4])
    kids = tree.treedef_children(tree.structure((1, [2, 3])))
    assert [k.num_leaves for k in kids] == [1, 2]


def test_partition_combine():
    x = fnx.numpy.asarray([1.0])
    t = {"w": x, "act": "relu", "n": [3, x]}
    arrays, rest = tree.partition(t, tree.is_array)
    assert arrays == {"w": x, "act": None, "n": [None, x]} or (
        arrays["act"] is None and arrays["w"] is x and arrays["n"][0] is None)
    assert rest["w"] is None and rest["act"] == "relu" and rest["n"] == [3, None]
    back = tree.combine(arrays, rest)
    assert back["w"] is x and back["act"] == "relu" and back["n"][0] == 3 and back["n"][1] is x
    # structure of the partitions equals when None placeholders are leaves
    nl = lambda v: v is None  # noqa: E731
    td = tree.structure(t)
    assert tree.structure(arrays, is_leaf=nl) == tree.structure(rest, is_leaf=nl) == td
    # a predicate tree (prefix): True/False per subtree
    sel, oth = tree.partition({"a": (1, 2), "b": 3}, {"a": True, "b": False})
    assert sel == {"a": (1, 2), "b": None} and oth == {"a": (None, None), "b": 3}
    assert tree.combine(sel, oth) == {"a": (1, 2), "b": 3}
    # dataclasses and namedtuples survive
    d = DC(w=x, b=2, act="tanh")
    p, q = tree.partition(d, tree.is_array)
    assert p.w is x and p.b is None and p.act == "tanh"
    assert tree.combine(p, q) == DC(x, 2, "tanh")
    assert tree.combine(Pair(None, 2), Pair(1, None), Pair(5, 6)) == Pair(1, 2)
