"""Reference nest analysis: Timeloop's default model, one mapping at a time.

This walks the loop nest the way Timeloop's nest analysis does, so that every count
can be checked against Timeloop: tiles are axis-aligned boxes of each tensor (the
projection of a box of the iteration space), the delta between consecutive tiles
at a level is what moves in from the parent, and a temporal loop is simulated at
its first two iterations only, the second standing for all the rest (Timeloop's
uniform extrapolation). A tile keeps its residue from the previous iteration only
while it keeps moving by the same step; a change of stride refetches it whole.
Spatial fan-outs compare the deltas of sibling instances to find multicast, and the
deltas of mesh neighbours one step earlier to find link transfers.

Remainders (imperfect factorization): where the factors of a dimension multiply to
more than its bound, the points at or past the bound do not run. A loop runs the
iterations whose first point is within the bound (Timeloop's residual end, where
the loops of its dimension outside it are at their last iteration), tiles are
clipped at the bound, and an instance without a point is idle. Iteration #1 then
need not stand for the rest: each loop is walked until an iteration leaves the
loops inside as it found them (walk_exactly), and a fan-out's instances class by
class, those that run alike in every call (fill_by_class). The counts are then exact
(tests/brute_force.py), Timeloop's extrapolations aside.

It is the slow, literal path: the vectorized model is tested against it.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from math import prod
from operator import add, sub

from ..architecture import Architecture
from ..mapping import Mapping
from ..problem import Problem

Box = tuple[tuple[int, ...], tuple[int, ...]]  # (low inclusive, high exclusive) per rank
# Combinations of the loops outside a spatial loop that alike() lists to find which of
# its instances run alike; past it, each instance is walked.
MAX_BASES = 4096
MAX_WALKED = 64  # walk_exactly's iterations walked one at a time, at most, before it extrapolates


@dataclass
class NestLoop:
    dim: str
    end: int
    spatial: str | None  # None, "X" or "Y"
    storage_level: int  # index into Architecture.levels (outermost = 0)
    boundary: bool = False  # outermost loop of its storage level
    master: bool = False  # outermost loop of a run of spatial loops
    # What an index of the loop counts along its dimension: the product of the
    # factors of the loops of that dimension inside it in the mapping.
    weight: int = 1


@dataclass
class ElementState:
    """What one instance of a loop level remembers between invocations."""

    last: list | None = None  # per tensor: (box, step) of the previous tile
    max_size: list[int] = field(default_factory=list)
    accesses: list[dict] = field(default_factory=list)  # per tensor: {multicast: accesses}
    link_transfers: list[float] = field(default_factory=list)
    prev_spatial_deltas: dict = field(default_factory=dict)
    first: dict = field(default_factory=dict)  # per watched iteration (walk_exactly): the first move's steps
    # What steps_inside reads, kept as tuples rather than made anew at each of its calls
    # (the walk's most frequent, under remainders): each tile's last step, and the
    # instances whose deltas prev_spatial_deltas holds.
    steps: tuple = ()
    seen: tuple = ()


def box_size(box: Box) -> int:
    return prod(map(sub, box[1], box[0]))


def subtract(new: Box, old: Box) -> Box:
    """Timeloop's AAHR difference: the part of `new` not in `old` when the boxes
    differ along one rank only; otherwise the whole of `new`."""
    n_lo, n_hi = new
    o_lo, o_hi = old
    if box_size(new) == 0 or box_size(old) == 0:
        return new
    if new == old:
        return empty_box(len(n_lo))
    if any(o_hi[r] <= n_lo[r] or o_lo[r] >= n_hi[r] for r in range(len(n_lo))):
        return new
    moved = [r for r in range(len(n_lo)) if n_lo[r] != o_lo[r] or n_hi[r] != o_hi[r]]
    if len(moved) > 1:
        return new
    r = moved[0]
    lo, hi = list(n_lo), list(n_hi)
    if o_lo[r] <= n_lo[r]:
        if o_hi[r] > n_hi[r]:
            return empty_box(len(n_lo))
        lo[r] = o_hi[r]
    else:
        hi[r] = o_lo[r]
    if lo[r] >= hi[r]:
        return empty_box(len(n_lo))
    return tuple(lo), tuple(hi)


def delta_if_same_stride(new: Box, old: Box, old_step: tuple[int, ...] | None
                         ) -> tuple[Box, tuple[int, ...] | None]:
    """Delta from `old` to `new`, keeping residue only while the tile moves by the
    same step as last time (a resident tile that stays put counts as a step of 0).

    Hardware address generators cannot follow residues across a change of stride,
    so Timeloop refetches the whole tile then. Returns the delta and the step that
    `new` carries forward (None after a refetch).
    """
    step = step_between(new, old)
    if old_step is None or step == old_step:
        return subtract(new, old), (step if old_step is None else old_step)
    return new, None


def step_between(new: Box, old: Box) -> tuple[int, ...] | None:
    """How far a tile moved from `old` to `new` (None: there was no tile before)."""
    return None if box_size(old) == 0 else tuple(map(sub, new[0], old[0]))


def empty_box(order: int) -> Box:
    zeros = (0,) * order
    return zeros, zeros


def translate(box: Box, offset: tuple[int, ...]) -> Box:
    if not any(offset):  # a tensor the loop does not index stays put (common at a fan-out)
        return box
    return tuple(map(add, box[0], offset)), tuple(map(add, box[1], offset))


def moved_on(before: list[Box], last: list[Box], times: int) -> Iterator[list[Box]]:
    """The deltas (one box per tensor) of the `times` instances that follow, in a line,
    two walked ones (`before`, then `last`): each moved on from the one before it as
    `last` moved from `before`. Only the tensors that move are translated: on a fan-out
    of 128 x 128 instances this is the walk's hottest loop."""
    offsets = [tuple(map(sub, new[0], old[0])) for old, new in zip(before, last)]
    moving = [k for k, offset in enumerate(offsets) if any(offset)]
    boxes = last
    for _ in range(times):
        boxes = list(boxes)
        for k in moving:
            boxes[k] = translate(boxes[k], offsets[k])
        yield boxes


def build_nest(problem: Problem, mapping: Mapping,
               kept: Sequence[bool] | None = None) -> list[NestLoop]:
    """The loops innermost first, as Timeloop orders them: per storage level, its
    spatial fan-out loops inside its temporal loops; a level without temporal loops
    gets a unit loop so that every level has a boundary. `kept` (per level, outermost
    first): the nest as one tensor sees it, where a level that does not keep it
    hands its loops to the keeper above: its temporal loops join the keeper's, above
    the keeper's fan-out, and its spatial loops join that fan-out, so that the
    keeper's fan-out compares, step by step, what the next keeper inside moves in.
    The loops keep their weights: the same points run at the same times."""
    levels = [([NestLoop(l.dim, l.factor, None, i, weight=w) for l, w in zip(lm.temporal, temporal) if l.factor > 1],
               [NestLoop(l.dim, l.factor, l.spatial or "X", i, weight=w)
                for l, w in zip(lm.spatial, spatial) if l.factor > 1])
              for i, (lm, (temporal, spatial)) in enumerate(zip(mapping.levels, mapping.weights()))]
    blocks: list[tuple[int, list[NestLoop], list[NestLoop]]] = []  # (level, temporal, spatial), outermost first
    for i, (temporal, spatial) in enumerate(levels):
        if kept is None or kept[i] or not blocks:
            blocks.append((i, temporal, spatial))
        else:
            keeper = blocks[-1][0]
            blocks[-1][1].extend(replace(loop, storage_level=keeper) for loop in temporal)
            blocks[-1][2].extend(replace(loop, storage_level=keeper) for loop in spatial)
    nest: list[NestLoop] = []
    for i, temporal, spatial in reversed(blocks):
        nest += reversed(spatial)
        nest += reversed(temporal or [NestLoop(problem.dims[-1], 1, None, i)])
        nest[-1].boundary = True
    previous_spatial = False
    for loop in reversed(nest):
        loop.master = loop.spatial is not None and not previous_spatial
        previous_spatial = loop.spatial is not None
    return nest


class NestAnalysis:
    """Deltas, working sets, multicast and link transfers of one mapping."""

    def __init__(self, problem: Problem, arch: Architecture, mapping: Mapping, link_transfers: bool = True,
                 kept: Sequence[bool] | None = None) -> None:
        self.problem = problem
        self.use_link_transfers = link_transfers
        self.arch = arch
        self.nest = build_nest(problem, mapping, kept)
        self.tensors = problem.tensors
        self.dim_index = {d: k for k, d in enumerate(problem.dims)}
        # Per tensor, per rank: its terms as (coefficient, dimension's index), for project().
        self.rank_terms = [[[(c, self.dim_index[d]) for c, d in rank] for rank in t.ranks] for t in problem.tensors]
        n = len(self.nest)
        self.mold_high = [[0] * len(problem.dims) for _ in range(n)]  # the extent of a tile, less one
        high = [0] * len(problem.dims)
        for lvl, loop in enumerate(self.nest):
            high[self.dim_index[loop.dim]] += (loop.end - 1) * loop.weight
            self.mold_high[lvl] = list(high)
        self.num_spatial_elems = [1] * n
        product = 1
        for lvl in reversed(range(n)):
            self.num_spatial_elems[lvl] = product
            if self.nest[lvl].spatial:
                product *= self.nest[lvl].end
        self.fanout = [1] * n
        for lvl, loop in enumerate(self.nest):
            if loop.spatial and not loop.master:
                self.fanout[lvl] = 0
            elif loop.master:
                f, k = 1, lvl
                while k >= 0 and self.nest[k].spatial:
                    f *= self.nest[k].end
                    k -= 1
                self.fanout[lvl] = f
        self.live: list[dict] = [dict() for _ in range(n)]
        # Remainders: factors that multiply to more than a bound; the points at or past
        # it do not run.
        self.last_bound = [problem.bounds[d] - 1 for d in problem.dims]
        self.imperfect = mapping.overshoots(problem.bounds)
        # Under remainders, every state under an instance's key (its prefixes), in the
        # order they came: what walk_exactly compares and shift_inside moves.
        self.subtree: dict[tuple, list[tuple[int, ElementState]]] = defaultdict(list)
        self.classes: dict[int, list[tuple[int, int]]] = {}  # alike(): per spatial loop
        self.watched: list[int] = []  # the iterations walk_exactly watches, innermost last
        self.marks = 0  # how many it has watched: the next one's mark
        self.transform = [0] * len(problem.dims)
        self.space_stamp: list[int] = []
        self.epochs = 1
        self.spatial_id = 0
        self.compute_accesses = 0

    # -- geometry --------------------------------------------------------------

    def project(self, low: list[int], high: list[int]) -> list[Box]:
        """Boxes of every tensor covered by the iteration box [low, high] (inclusive)."""
        boxes = []
        for ranks in self.rank_terms:  # plain loops: the walk's hottest lines, where sum() of generators cost double
            lo, hi = [], []
            for rank in ranks:
                first = last = 0
                for c, i in rank:
                    first += c * low[i]
                    last += c * high[i]
                lo.append(first)
                hi.append(last + 1)
            boxes.append((tuple(lo), tuple(hi)))
        return boxes

    def point_set(self, lvl: int) -> list[Box]:
        low = list(self.transform)
        high = list(map(min, map(add, self.transform, self.mold_high[lvl]), self.last_bound))
        return self.project(low, high)

    def runs(self, loop: NestLoop) -> int:
        """The iterations of `loop` that run here (remainders): those whose first point
        is within the bound of its dimension (Timeloop's residual end, where the loops
        of the dimension outside it are at their last iteration)."""
        d = self.dim_index[loop.dim]
        return min(loop.end, (self.last_bound[d] - self.transform[d]) // loop.weight + 1)

    def shift_inside(self, lvl: int, d: int, shift: int) -> None:
        """Move what the loops inside `lvl` (of this instance) remember by `shift` along
        dimension d: their last tiles and their fan-outs' last deltas, as if the
        iterations the walk stood for had run."""
        offsets = [tuple(sum(c * shift for c, dim in rank if self.dim_index[dim] == d) for rank in t.ranks)
                   for t in self.tensors]
        for _, st in self.inside(lvl):
            if st.last is not None:
                st.last = [(translate(box, o), step) for (box, step), o in zip(st.last, offsets)]
            st.prev_spatial_deltas = {i: [translate(box, o) for box, o in zip(boxes, offsets)]
                                      for i, boxes in st.prev_spatial_deltas.items()}

    def inside(self, lvl: int) -> list[tuple[int, ElementState]]:
        """Under remainders, the states of the loops inside `lvl` of this instance, each
        with its loop's index in the nest, in the order they came."""
        return [(k, st) for k, st in self.subtree[tuple(self.space_stamp[:-1])] if k < lvl]

    # -- state -----------------------------------------------------------------

    def state(self, lvl: int) -> ElementState:
        key = tuple(self.space_stamp[:-1])
        st = self.live[lvl].get(key)
        if st is None:
            k = len(self.tensors)
            st = ElementState(None, [0] * k, [defaultdict(float) for _ in range(k)], [0.0] * k, {})
            self.live[lvl][key] = st
            if self.imperfect:
                for n in range(len(key) + 1):
                    self.subtree[key[:n]].append((lvl, st))
        return st

    # -- recursion -------------------------------------------------------------

    def run(self) -> None:
        self.compute_deltas(len(self.nest) - 1)

    def compute_deltas(self, lvl: int) -> list[Box]:
        loop = self.nest[lvl]
        if loop.boundary:
            self.space_stamp.append(0)
        st = self.state(lvl)
        if loop.spatial:
            self.spatial_working_set(lvl)
        else:
            self.temporal_working_set(lvl, st)
        current = self.point_set(lvl)
        if loop.boundary or loop.master:
            st.max_size = [max(m, box_size(b)) for m, b in zip(st.max_size, current)]
        if st.last is None:
            st.last = [(empty_box(len(b[0])), None) for b in current]
        unmarked = [mark for mark in self.watched if mark not in st.first]
        if unmarked:
            moved = tuple(step_between(new, old) for new, (old, _) in zip(current, st.last))
            for mark in unmarked:
                st.first[mark] = moved
        deltas, steps = [], []
        for k, new in enumerate(current):
            old, old_step = st.last[k]
            delta, step = delta_if_same_stride(new, old, old_step)
            deltas.append(delta)
            steps.append(step)
            st.last[k] = (new, step)
        st.steps = tuple(steps)
        if loop.boundary:
            self.space_stamp.pop()
        return deltas

    def temporal_working_set(self, lvl: int, st: ElementState) -> None:
        loop = self.nest[lvl]
        d = self.dim_index[loop.dim]
        end = self.runs(loop) if self.imperfect else loop.end
        if lvl == 0:
            body = end * self.epochs
            if self.spatial_id == 0:
                self.compute_accesses += body
            for k in range(len(self.tensors)):
                st.accesses[k][1] += body
            return
        if self.imperfect:
            sizes = self.walk_exactly(lvl, d, end)
        else:
            # Iteration #0, then #1 standing for iterations #1..#last.
            step = loop.weight
            saved = self.transform[d]
            sizes = [(self.compute_deltas(lvl - 1), 1)]
            self.transform[d] += step
            if end >= 2:
                saved_epochs = self.epochs
                self.epochs *= end - 1
                sizes.append((self.compute_deltas(lvl - 1), end - 1))
                self.epochs = saved_epochs
            self.transform[d] = saved
        if self.nest[lvl - 1].boundary:
            for k in range(len(self.tensors)):
                total = sum(box_size(deltas[k]) * scale for deltas, scale in sizes)
                st.accesses[k][1] += total * self.epochs

    def walk_exactly(self, lvl: int, d: int, end: int) -> list[tuple[list[Box], int]]:
        """Under remainders, the deltas of the `end` iterations of loop `lvl` (along
        dimension d), each with the iterations it stands for. Iteration #1 need not
        stand for the rest: the last iterations run the loops inside short, and a
        loop inside that ran short leaves its tiles moving by other steps than they
        will. So the iterations are walked one at a time until one leaves what the
        loops inside remember as it found it (`repeats`): the whole iterations after
        it repeat it. That an iteration starts as the one before it did is not enough:
        #0 follows a step of a loop outside and #1 a step of this one, so #1 can start
        as #0 did and leave another state (a one-element tile that #0 moved in stays
        put in #1, which refetches it on that change of stride, and #2 does not:
        counting #1 again for #2 counted the tile twice; tests/test_brute_force.py)."""
        loop = self.nest[lvl]
        saved, saved_epochs = self.transform[d], self.epochs

        span = self.mold_high[lvl - 1][d]
        full = min(end, (self.last_bound[d] - saved - span) // loop.weight + 1)  # iterations #0..#full-1 run whole

        sizes = []
        inside, i = -1, 0  # inside: the iteration the loops inside remember
        while i < end:
            entry = self.steps_inside(lvl)
            # Past the whole ones each iteration runs less than the one before. Tiles
            # whose steps never settle are walked MAX_WALKED iterations, the last of
            # them standing for the rest, as in Timeloop.
            scale = full - i if MAX_WALKED <= i < full else 1
            if i - 1 > inside >= 0:
                self.shift_inside(lvl, d, (i - 1 - inside) * loop.weight)
            self.transform[d] = saved + i * loop.weight
            self.epochs = saved_epochs * scale
            # Whether the next iterations repeat this one shows once it has run: then
            # what it counted is counted for them too, rather than walked again.
            watch = scale == 1 and 1 <= i < full - 1
            if watch:
                counted = self.counted_inside(lvl)
                self.marks += 1
                self.watched.append(self.marks)
            deltas = self.compute_deltas(lvl - 1)
            if watch and self.repeats(lvl, entry, self.watched.pop()):
                self.count_again(lvl, counted, full - i - 1)
                scale = full - i
            sizes.append((deltas, scale))
            inside, i = i, i + scale
        # What comes next moves on from the last iteration, not from the last one walked.
        if end - 1 > inside >= 0:
            self.shift_inside(lvl, d, (end - 1 - inside) * loop.weight)
        self.transform[d], self.epochs = saved, saved_epochs
        return sizes

    def counted_inside(self, lvl: int) -> tuple[dict, int]:
        """What the loops inside `lvl` (of this instance) have counted so far."""
        return ({id(st): ([dict(a) for a in st.accesses], list(st.link_transfers)) for _, st in self.inside(lvl)},
                self.compute_accesses)

    def count_again(self, lvl: int, before: tuple[dict, int], times: int) -> None:
        """Count what the loops inside `lvl` counted since `before` `times` more."""
        counted, compute = before
        for _, st in self.inside(lvl):
            accesses, links = counted.get(id(st), ([{} for _ in st.accesses], [0.0] * len(st.link_transfers)))
            for now, then in zip(st.accesses, accesses):
                for m, a in list(now.items()):
                    now[m] += (a - then.get(m, 0.0)) * times
            st.link_transfers = [now + (now - then) * times for now, then in zip(st.link_transfers, links)]
        self.compute_accesses += (self.compute_accesses - compute) * times

    def repeats(self, lvl: int, entry: tuple, mark: int) -> bool:
        """Whether the iteration just walked (`mark`) leaves the loops inside `lvl` as
        it found them (`entry`, steps_inside), so that the next ones repeat it: each
        tile with the same step, or, where it had just been refetched (no step),
        with the step its first move took, which the next first move takes too."""
        states = [(k, st) for k, st in self.inside(lvl) if st.last is not None]
        firsts = [st.first.pop(mark, None) for _, st in states]
        if len(states) != len(entry):
            return False
        for (k, st), first, (k_then, steps, seen) in zip(states, firsts, entry):
            if k != k_then or st.seen != seen:
                return False
            for (_, now), then, moved in zip(st.last, steps, first or (None,) * len(steps)):
                if now != then and not (then is None and now == moved):
                    return False
        return True

    def steps_inside(self, lvl: int) -> tuple:
        """What the loops inside `lvl` (of this instance) remember that decides what
        moves next, but for where the tiles are: each tile's last step, and which
        instances of each fan-out saw deltas last time."""
        return tuple((k, st.steps, st.seen) for k, st in self.inside(lvl) if st.last is not None)

    def spatial_working_set(self, lvl: int) -> None:
        fanout = self.fanout[lvl]
        self.spatial_id *= fanout
        deltas: dict[int, list[Box]] = {}
        self.fill_spatial_deltas(lvl, deltas, 0)
        self.spatial_id //= fanout
        st = self.state(lvl)
        chosen = self.multicast_accesses(deltas, {k: set(deltas) for k in range(len(self.tensors))})
        if self.use_link_transfers:
            unaccounted = {k: set(deltas) for k in range(len(self.tensors))}
            links = self.link_transfers(lvl, deltas, unaccounted, st)
            with_links = self.multicast_accesses(deltas, unaccounted)
            for k in range(len(self.tensors)):
                if sum(with_links[k].values()) < sum(chosen[k].values()):
                    st.link_transfers[k] += links[k]
                    chosen[k] = with_links[k]
        for k, stats in enumerate(chosen):
            for m, acc in stats.items():
                st.accesses[k][m] += acc

    def fill_spatial_deltas(self, lvl: int, deltas: dict, base: int) -> None:
        loop = self.nest[lvl]
        base *= loop.end  # an instance keeps its place in the array where others are idle
        d = self.dim_index[loop.dim]
        end = self.runs(loop) if self.imperfect else loop.end
        if lvl == 0:
            if base == 0 and self.spatial_id == 0:
                self.compute_accesses += self.epochs
            for i in range(end):
                point = list(self.transform)
                point[d] += i * loop.weight
                deltas[base + i] = self.project(point, point)
            return
        if self.imperfect:
            self.fill_by_class(lvl, d, end, deltas, base)
            return
        saved_transform = self.transform[d]
        saved_id = self.spatial_id
        step = loop.weight
        if self.nest[lvl - 1].spatial:
            for i in range(end):
                self.fill_spatial_deltas(lvl - 1, deltas, base + i)
                self.transform[d] += step
        else:
            ran = []
            for i in range(min(3, end)):
                self.spatial_id = saved_id + base + i
                self.space_stamp[-1] = base + i
                deltas[base + i] = self.compute_deltas(lvl - 1)
                ran.append(base + i)
                self.transform[d] += step
            if end > len(ran):
                for i, moved in enumerate(moved_on(deltas[ran[-2]], deltas[ran[-1]], end - 3), start=3):
                    deltas[base + i] = moved
        self.transform[d] = saved_transform
        self.spatial_id = saved_id

    def fill_by_class(self, lvl: int, d: int, end: int, deltas: dict, base: int) -> None:
        """Under remainders, the deltas of the `end` instances of spatial loop `lvl`
        that run, class by class (`alike`): in each the first three are walked, the
        third counting for the rest of its class (epochs), and the others' deltas are
        the third's moved on as the second's moved to it (a whole block of the
        instances inside, where spatial loops nest)."""
        loop = self.nest[lvl]
        block = prod(l.end for l in self.run_inside(lvl))  # ids of the instances inside one of these
        saved_transform, saved_id, saved_epochs = self.transform[d], self.spatial_id, self.epochs
        for first, stop in self.alike(lvl):
            stop = min(stop, end)
            if first >= stop:
                break
            for i in range(first, min(first + 3, stop)):
                self.transform[d] = saved_transform + i * loop.weight
                self.epochs = saved_epochs * (stop - i if i == first + 2 else 1)
                if self.nest[lvl - 1].spatial:
                    self.fill_spatial_deltas(lvl - 1, deltas, base + i)
                else:
                    self.spatial_id = saved_id + base + i
                    self.space_stamp[-1] = base + i
                    deltas[base + i] = self.compute_deltas(lvl - 1)
            last = [(base + first + 2) * block + x for x in range(block)]
            for key in (k for k in last if k in deltas) if stop > first + 3 else ():
                for j, moved in enumerate(moved_on(deltas[key - block], deltas[key], stop - first - 3), start=1):
                    deltas[key + j * block] = moved
        self.transform[d], self.spatial_id, self.epochs = saved_transform, saved_id, saved_epochs

    def run_inside(self, lvl: int) -> list[NestLoop]:
        """The spatial loops inside `lvl` in its run (one fan-out)."""
        inside = []
        while lvl > 0 and self.nest[lvl - 1].spatial:
            lvl -= 1
            inside.append(self.nest[lvl])
        return inside

    def alike(self, lvl: int) -> list[tuple[int, int]]:
        """Under remainders, the instances of spatial loop `lvl` that run alike in
        every call, as ranges [first, stop): in a call, the instances whose points are
        all within the bound run whole, the next few short, the rest not at all; the
        ranges part where any call of the walk parts them (`bases`)."""
        if lvl in self.classes:
            return self.classes[lvl]
        loop = self.nest[lvl]
        d = self.dim_index[loop.dim]
        span = self.mold_high[lvl - 1][d] if lvl else 0
        bases = self.bases(lvl)
        cuts = set(range(loop.end + 1)) if bases is None else {0, loop.end}
        for t in bases or ():
            whole = (self.last_bound[d] - span - t) // loop.weight + 1
            running = (self.last_bound[d] - t) // loop.weight + 1
            cuts |= {max(0, min(i, loop.end)) for i in range(whole, running + 1)}
        cuts = sorted(cuts)
        self.classes[lvl] = list(zip(cuts, cuts[1:]))
        return self.classes[lvl]

    def bases(self, lvl: int) -> set[int] | None:
        """Where along its dimension the loops outside loop `lvl` can set it going:
        every combination of the indices of that dimension's loops outside it (None
        where there are more than MAX_BASES: then no two instances count as alike)."""
        loop = self.nest[lvl]
        outside = [l for l in self.nest[lvl + 1:] if l.dim == loop.dim]
        if prod(l.end for l in outside) > MAX_BASES:
            return None
        return {sum(i * l.weight for i, l in zip(index, outside))
                for index in itertools.product(*(range(l.end) for l in outside))}

    def multicast_accesses(self, deltas: dict, unaccounted: dict) -> list[dict]:
        """Group identical deltas of sibling instances: one read serves the group."""
        stats: list[dict] = [dict() for _ in self.tensors]
        for k in range(len(self.tensors)):
            groups = Counter(deltas[i][k] for i in sorted(unaccounted[k]))  # in the order of their first instances
            unaccounted[k].clear()
            for delta, group in groups.items():
                size = box_size(delta)
                if size > 0:
                    stats[k][group] = stats[k].get(group, 0.0) + size * self.epochs
        return stats

    def link_transfers(self, lvl: int, deltas: dict, unaccounted: dict, st: ElementState) -> list[float]:
        """Deltas a mesh neighbour held one step earlier arrive peer to peer."""
        h, v = self.arch.fanout(self.nest[lvl].storage_level)
        prev = st.prev_spatial_deltas
        reuse = [[False] * len(self.tensors) for _ in range(h * v)]

        def compare(cur: int, other: int) -> None:
            if cur not in deltas or other not in prev:
                return
            for k in range(len(self.tensors)):
                if box_size(deltas[cur][k]) > 0 and deltas[cur][k] == prev[other][k]:
                    reuse[cur][k] = True

        if v > 1:
            for x in range(h):
                for y in range(1, v):
                    compare(y * h + x, (y - 1) * h + x)
                for y in range(v - 1):
                    compare(y * h + x, (y + 1) * h + x)
        if h > 1:
            for y in range(v):
                for x in range(1, h):
                    compare(y * h + x, y * h + x - 1)
                for x in range(h - 1):
                    compare(y * h + x, y * h + x + 1)
        links = [0.0] * len(self.tensors)
        for i, boxes in deltas.items():
            for k in range(len(self.tensors)):
                if i < len(reuse) and reuse[i][k]:
                    links[k] += box_size(boxes[k]) * self.epochs
                    unaccounted[k].discard(i)
        st.prev_spatial_deltas, st.seen = deltas, tuple(deltas)
        return links
