"""The state diagram of a workflow definition, as one standalone SVG document.

``render_svg`` takes a loaded definition (``load_definition``: transitions keyed ``source`` and
``dest``) and lays it out left to right by breadth-first distance from the initial state. Every
transition goes from one layer to the next or back, so forward edges are drawn as curves across
the gap between two columns, and back edges (to an earlier layer, or to a non-adjacent state of
the same layer) run in lanes above or below all boxes, reached through vertical tracks in the
column gaps, so no edge runs through a box. Same-layer neighbours get a short vertical arrow.

The output is plain SVG with presentation attributes: no CSS, scripts, fonts or ids, so several
diagrams can sit inline in one page. Text widths are estimated, not measured. State groups carry
``data-state="<name>"`` and edge groups ``data-transition="<name>,<name>"`` (one edge per source
and destination pair) for tests and the admin UI; ``<title>`` children are the tooltips.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

# Light fills with dark text: every pair is far above WCAG AA (4.5:1); the stroke tells the
# categories apart for readers who cannot rely on the fill.
CATEGORY_COLOURS: dict[str, tuple[str, str]] = {
    "new": ("#dbeafe", "#1d4ed8"),
    "open": ("#fef3c7", "#b45309"),
    "pending": ("#ede9fe", "#6d28d9"),
    "solved": ("#dcfce7", "#15803d"),
    "closed": ("#e5e7eb", "#374151"),
}
FALLBACK_COLOURS = ("#ffffff", "#374151")
TEXT = "#111827"
EDGE = "#4b5563"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"

MARGIN = 24
MARKER_SPACE = 44  # left of the first column: the initial-state marker
BOX_H = 48
ROW_GAP = 64  # room for a same-layer arrow and its label, or a self-loop
TERMINAL_RING = 4  # the outer border of a terminal state
TRACK_OFFSET = 14  # first vertical track of a back edge, from the box it leaves or enters
TRACK_SPACING = 10
LANE_OFFSET = 40  # first back-edge lane, from the top or bottom box edge
LANE_SPACING = 24
LABEL_SIZE = 12
LABEL_H = 15
ARROW_LEN = 9


def _text_width(text: str, size: float, bold: bool = False) -> float:
    return len(text) * size * (0.64 if bold else 0.6)


def _num(value: float) -> str:
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _attr(value: str) -> str:
    return quoteattr(value)


@dataclass
class _Box:
    name: str
    label: str
    category: str
    terminal: bool
    layer: int
    row: int = 0
    x: float = 0.0
    y: float = 0.0  # top, relative to the first box row until the lanes are known
    width: float = 0.0
    left: list[tuple[tuple[int, float], int, _Edge]] = field(default_factory=list)  # ports
    right: list[tuple[tuple[int, float], int, _Edge]] = field(default_factory=list)

    @property
    def cy(self) -> float:
        return self.y + BOX_H / 2

    @property
    def ring(self) -> float:
        return TERMINAL_RING if self.terminal else 0.0


@dataclass
class _Edge:
    index: int
    source: str
    dest: str
    transitions: list[dict[str, Any]]
    kind: str = ""  # forward | back | adjacent | self
    above: bool = True  # back edges: which lane area
    lane: int = 0
    src_track: int = 0
    dst_track: int = 0
    start: tuple[float, float] = (0.0, 0.0)
    end: tuple[float, float] = (0.0, 0.0)

    @property
    def names(self) -> str:
        return ",".join(t["name"] for t in self.transitions)

    @property
    def label(self) -> str:
        return ", ".join(t["name"] for t in self.transitions)


def _layers(definition: dict[str, Any]) -> dict[str, int]:
    """Breadth-first distance from the initial state; unreachable states go one layer past the
    last, so a draft that fails validation can still be drawn."""
    outgoing: dict[str, list[str]] = {s["name"]: [] for s in definition["states"]}
    for tr in definition["transitions"]:
        for src in tr["source"]:
            if tr["dest"] not in outgoing.setdefault(src, []):
                outgoing[src].append(tr["dest"])
    initial = definition["initial"]
    distance = {initial: 0}
    queue = deque([initial])
    while queue:
        here = queue.popleft()
        for nxt in outgoing.get(here, []):
            if nxt not in distance:
                distance[nxt] = distance[here] + 1
                queue.append(nxt)
    beyond = max(distance.values()) + 1
    return {s["name"]: distance.get(s["name"], beyond) for s in definition["states"]}


def _edges(definition: dict[str, Any]) -> list[_Edge]:
    """One edge per (source, dest) pair, in the order the transitions first mention them."""
    pairs: dict[tuple[str, str], _Edge] = {}
    for tr in definition["transitions"]:
        for src in tr["source"]:
            key = (src, tr["dest"])
            if key not in pairs:
                pairs[key] = _Edge(len(pairs), src, tr["dest"], [])
            pairs[key].transitions.append(tr)
    return list(pairs.values())


class _Diagram:
    def __init__(self, definition: dict[str, Any]) -> None:
        self.definition = definition
        layer_of = _layers(definition)
        self.boxes = {
            s["name"]: _Box(
                name=s["name"],
                label=s.get("label") or s["name"],
                category=s["category"],
                terminal=bool(s.get("terminal")),
                layer=layer_of[s["name"]],
            )
            for s in definition["states"]
        }
        self.edges = [e for e in _edges(definition) if e.source in self.boxes]
        self.edges = [e for e in self.edges if e.dest in self.boxes]
        self.columns: list[list[_Box]] = [[] for _ in range(max(layer_of.values()) + 1)]
        self.labels: list[tuple[float, float, float, float]] = []  # placed label rectangles
        self.max_x = 0.0
        self.max_y = 0.0
        self._order_rows()
        self._classify()
        self._place()

    # -- layout ---------------------------------------------------------------------------

    def _order_rows(self) -> None:
        """Definition order, then each layer sorted by where its predecessors sit (one
        barycentre pass), which removes most crossings of a typical helpdesk flow."""
        for box in self.boxes.values():
            self.columns[box.layer].append(box)
        position = {name: i for i, name in enumerate(self.boxes)}
        for layer, column in enumerate(self.columns):
            if layer:
                column.sort(key=lambda b: (self._barycentre(b), position[b.name]))
            for row, box in enumerate(column):
                box.row = row

    def _barycentre(self, box: _Box) -> float:
        rows = [
            self.boxes[e.source].row
            for e in self.edges
            if e.dest == box.name and self.boxes[e.source].layer == box.layer - 1
        ]
        return sum(rows) / len(rows) if rows else math.inf

    def _classify(self) -> None:
        tallest = max(len(c) for c in self.columns)
        self.height = tallest * BOX_H + (tallest - 1) * ROW_GAP
        for column in self.columns:
            offset = (self.height - (len(column) * BOX_H + (len(column) - 1) * ROW_GAP)) / 2
            for box in column:
                box.y = offset + box.row * (BOX_H + ROW_GAP)
        back: list[_Edge] = []
        for edge in self.edges:
            src, dst = self.boxes[edge.source], self.boxes[edge.dest]
            if src is dst:
                edge.kind = "self"
            elif dst.layer == src.layer + 1:
                edge.kind = "forward"
            elif dst.layer == src.layer and abs(dst.row - src.row) == 1:
                edge.kind = "adjacent"
            else:
                edge.kind = "back"
                edge.above = (src.cy + dst.cy) / 2 <= self.height / 2
                back.append(edge)
        for above in (True, False):
            side = sorted(
                (e for e in back if e.above == above),
                key=lambda e: (self._span(e), self.boxes[e.source].layer, e.index),
            )
            for lane, edge in enumerate(side):
                edge.lane = lane
        self.lanes_above = sum(1 for e in back if e.above)
        self.lanes_below = len(back) - self.lanes_above
        # Outer lanes take the tracks nearest the boxes, so verticals do not cut inner lanes.
        self.src_tracks: dict[int, list[_Edge]] = {}
        self.dst_tracks: dict[int, list[_Edge]] = {}
        for edge in sorted(back, key=lambda e: (-e.lane, e.above, e.index)):
            src_gap = self.src_tracks.setdefault(self.boxes[edge.source].layer - 1, [])
            edge.src_track = len(src_gap)
            src_gap.append(edge)
            dst_gap = self.dst_tracks.setdefault(self.boxes[edge.dest].layer, [])
            edge.dst_track = len(dst_gap)
            dst_gap.append(edge)

    def _span(self, edge: _Edge) -> int:
        return self.boxes[edge.source].layer - self.boxes[edge.dest].layer

    def _gap_width(self, gap: int) -> float:
        """Width right of column ``gap``: forward labels in the middle, tracks on both sides."""
        labels = [
            _text_width(e.label, LABEL_SIZE)
            for e in self.edges
            if e.kind == "forward" and self.boxes[e.source].layer == gap
        ]
        tracks = max(len(self.src_tracks.get(gap, [])), len(self.dst_tracks.get(gap, [])))
        side = TRACK_OFFSET + TRACK_SPACING * tracks
        if gap == len(self.columns) - 1:
            return side
        return max(90.0, 2 * side + max(labels, default=0.0) + 24)

    def _place(self) -> None:
        width = max(
            max(_text_width(b.label, 13, bold=True), _text_width(b.name, 11)) + 28
            for b in self.boxes.values()
        )
        self.box_w = max(110.0, width)
        # A self-loop and its label stand above its box: keep the lanes clear of them.
        self.lane_offset = LANE_OFFSET + (16 if any(e.kind == "self" for e in self.edges) else 0)
        lanes = LANE_SPACING * max(self.lanes_above - 1, 0)
        self.top = MARGIN + self.lane_offset + lanes + LABEL_H
        x = float(MARGIN + MARKER_SPACE)
        self.column_x: list[float] = []
        for layer, column in enumerate(self.columns):
            self.column_x.append(x)
            for box in column:
                box.x, box.y, box.width = x, box.y + self.top, self.box_w
            x += self.box_w + self._gap_width(layer)
        self.bottom = self.top + self.height
        self._extend(x, self.bottom)
        self._assign_ports()

    def _assign_ports(self) -> None:
        for edge in self.edges:
            src, dst = self.boxes[edge.source], self.boxes[edge.dest]
            # Back edges take the ports nearest their lane, the one on the nearest track outermost,
            # so a stub never crosses the vertical of a neighbour.
            if edge.kind == "forward":
                src.right.append(((1, dst.cy), edge.index, edge))
                dst.left.append(((1, src.cy), edge.index, edge))
            elif edge.kind == "back" and edge.above:
                src.left.append(((0, edge.src_track), edge.index, edge))
                dst.right.append(((0, edge.dst_track), edge.index, edge))
            elif edge.kind == "back":
                src.left.append(((2, -edge.src_track), edge.index, edge))
                dst.right.append(((2, -edge.dst_track), edge.index, edge))
        for box in self.boxes.values():
            for ports, x, is_left in (
                (box.left, box.x - box.ring, True),
                (box.right, box.x + box.width + box.ring, False),
            ):
                ports.sort(key=lambda p: (p[0], p[1]))
                for i, (_, _, edge) in enumerate(ports):
                    point = (x, box.y + BOX_H * (i + 1) / (len(ports) + 1))
                    outgoing = edge.source == box.name and (edge.kind == "back") == is_left
                    if outgoing:
                        edge.start = point
                    else:
                        edge.end = point

    def _extend(self, x: float, y: float) -> None:
        self.max_x, self.max_y = max(self.max_x, x), max(self.max_y, y)

    def _free(self, rect: tuple[float, float, float, float]) -> bool:
        x, y, w, h = rect
        for ox, oy, ow, oh in self.labels:
            if x < ox + ow and ox < x + w and y < oy + oh and oy < y + h:
                return False
        for box in self.boxes.values():
            bx, by = box.x - box.ring - 2, box.y - box.ring - 2
            bw, bh = box.width + 2 * box.ring + 4, BOX_H + 2 * box.ring + 4
            if x < bx + bw and bx < x + w and y < by + bh and by < y + h:
                return False
        return True

    # -- drawing ------------------------------------------------------------------------

    def svg(self) -> str:
        body = [self._initial_marker()]
        body += [self._box(b) for column in self.columns for b in column]
        # Fixed labels first, so forward labels (which can slide) avoid them.
        order = {"adjacent": 0, "back": 1, "self": 2, "forward": 3}
        drawn = {e.index: self._edge(e) for e in sorted(self.edges, key=lambda e: order[e.kind])}
        body += [drawn[e.index] for e in self.edges]
        body.append(self._legend())
        width, height = self.max_x + MARGIN, self.max_y + MARGIN
        name = str(self.definition.get("name") or "workflow")
        return "\n".join(
            [
                '<?xml version="1.0" encoding="UTF-8"?>',
                f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(width)}" '
                f'height="{_num(height)}" viewBox="0 0 {_num(width)} {_num(height)}" '
                f'role="img" font-family="{FONT}" font-size="{LABEL_SIZE}">',
                f"<title>{escape(f'Workflow {name}')}</title>",
                f'<rect width="{_num(width)}" height="{_num(height)}" fill="#ffffff"/>',
                *body,
                "</svg>",
                "",
            ]
        )

    def _initial_marker(self) -> str:
        box = self.boxes[self.definition["initial"]]
        tip = (box.x - box.ring, box.cy)
        dot = (tip[0] - 34, tip[1])
        return (
            f"<g data-initial={_attr(box.name)}><title>Initial state</title>"
            f'<circle cx="{_num(dot[0])}" cy="{_num(dot[1])}" r="5" fill="{TEXT}"/>'
            f'<path d="M{_num(dot[0])} {_num(dot[1])}H{_num(tip[0] - ARROW_LEN + 1)}" '
            f'stroke="{TEXT}" stroke-width="1.5"/>{_arrowhead(tip, (1.0, 0.0), TEXT)}</g>'
        )

    def _box(self, box: _Box) -> str:
        fill, stroke = CATEGORY_COLOURS.get(box.category, FALLBACK_COLOURS)
        notes = [f"category {box.category}"]
        if box.name == self.definition["initial"]:
            notes.append("initial")
        if box.terminal:
            notes.append("terminal")
        parts = [
            f"<g data-state={_attr(box.name)} data-category={_attr(box.category)}>",
            f"<title>{escape(f'{box.label} ({box.name}): ' + ', '.join(notes))}</title>",
        ]
        if box.terminal:
            ring = box.ring
            outer = (box.x - ring, box.y - ring, box.width + 2 * ring, BOX_H + 2 * ring)
            parts.append(_rect(*outer, 12, "none", stroke))
        parts.append(_rect(box.x, box.y, box.width, BOX_H, 8, fill, stroke))
        cx = box.x + box.width / 2
        if box.label == box.name:
            parts.append(_text(cx, box.cy + 4.5, box.label, 13, weight="600"))
        else:
            parts.append(_text(cx, box.y + 21, box.label, 13, weight="600"))
            parts.append(_text(cx, box.y + 37, box.name, 11, fill="#374151"))
        parts.append("</g>")
        return "".join(parts)

    def _edge(self, edge: _Edge) -> str:
        path, tip, direction, label_at = getattr(self, f"_{edge.kind}_route")(edge)
        lines = []
        for tr in edge.transitions:
            line = f"{tr['name']}"
            if tr.get("label"):
                line += f" ({tr['label']})"
            line += f": {edge.source} → {edge.dest}; roles: {', '.join(tr.get('roles', []))}"
            if tr.get("guards"):
                line += f"; guards: {', '.join(tr['guards'])}"
            lines.append(line)
        x, y = label_at
        return (
            f"<g data-transition={_attr(edge.names)} data-source={_attr(edge.source)} "
            f"data-dest={_attr(edge.dest)}><title>{escape(chr(10).join(lines))}</title>"
            f'<path d="{path}" fill="none" stroke="{EDGE}" stroke-width="1.5"/>'
            f"{_arrowhead(tip, direction, EDGE)}"
            f"{_text(x, y + 4, edge.label, LABEL_SIZE, fill='#1f2937', halo=True)}</g>"
        )

    def _take_label(self, x: float, y: float, text: str) -> None:
        w = _text_width(text, LABEL_SIZE)
        self.labels.append((x - w / 2, y - LABEL_H / 2, w, LABEL_H))
        self._extend(x + w / 2, y + LABEL_H / 2)

    def _forward_route(self, edge: _Edge) -> tuple[str, Any, Any, Any]:
        (x1, y1), (x2, y2) = edge.start, edge.end
        x2 -= ARROW_LEN - 1
        bend = (x2 - x1) / 2
        controls = ((x1, y1), (x1 + bend, y1), (x2 - bend, y2), (x2, y2))
        w = _text_width(edge.label, LABEL_SIZE)
        at = _bezier(controls, 0.5)
        for t in (0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8):
            point = _bezier(controls, t)
            if self._free((point[0] - w / 2, point[1] - LABEL_H / 2, w, LABEL_H)):
                at = point
                break
        self._take_label(*at, edge.label)
        path = (
            f"M{_num(x1)} {_num(y1)}C{_num(x1 + bend)} {_num(y1)} "
            f"{_num(x2 - bend)} {_num(y2)} {_num(x2)} {_num(y2)}"
        )
        return path, edge.end, (1.0, 0.0), at

    def _back_route(self, edge: _Edge) -> tuple[str, Any, Any, Any]:
        (x1, y1), (x2, y2) = edge.start, edge.end
        src, dst = self.boxes[edge.source], self.boxes[edge.dest]
        track_s = src.x - TRACK_OFFSET - TRACK_SPACING * edge.src_track
        track_d = dst.x + dst.width + TRACK_OFFSET + TRACK_SPACING * edge.dst_track
        if edge.above:
            lane = self.top - self.lane_offset - LANE_SPACING * edge.lane
        else:
            lane = self.bottom + LANE_OFFSET + LANE_SPACING * edge.lane
        self._extend(max(track_s, track_d), lane)
        points = [(x1, y1), (track_s, y1), (track_s, lane), (track_d, lane), (track_d, y2)]
        points.append((x2 + ARROW_LEN - 1, y2))
        at = ((track_s + track_d) / 2, lane - LABEL_H / 2 - 2)
        self._take_label(*at, edge.label)
        return _rounded(points, 10), edge.end, (-1.0, 0.0), at

    def _adjacent_route(self, edge: _Edge) -> tuple[str, Any, Any, Any]:
        src, dst = self.boxes[edge.source], self.boxes[edge.dest]
        down = dst.row > src.row
        both = any(e.source == edge.dest and e.dest == edge.source for e in self.edges)
        x = src.x + src.width / 2
        if both:
            x += -src.width / 4 if down else src.width / 4
        upper, lower = (src, dst) if down else (dst, src)
        y_top, y_bottom = upper.y + BOX_H + upper.ring, lower.y - lower.ring
        y1, y2 = (y_top, y_bottom) if down else (y_bottom, y_top)
        sign = 1.0 if down else -1.0
        gap_mid = (y_top + y_bottom) / 2
        label_y = gap_mid + (sign * -10 if both else 0)
        self._take_label(x, label_y, edge.label)
        path = f"M{_num(x)} {_num(y1)}V{_num(y2 - sign * (ARROW_LEN - 1))}"
        return path, (x, y2), (0.0, sign), (x, label_y)

    def _self_route(self, edge: _Edge) -> tuple[str, Any, Any, Any]:
        box = self.boxes[edge.source]
        right, top = box.x + box.width, box.y - box.ring
        start, end = (right - 44, top), (right - 16, top)
        c1, c2 = (right - 50, top - 30), (right - 10, top - 30)
        dx, dy = end[0] - c2[0], end[1] - c2[1]
        norm = math.hypot(dx, dy)
        at = (right - 30, top - 32)
        self._take_label(*at, edge.label)
        path = (
            f"M{_num(start[0])} {_num(start[1])}C{_num(c1[0])} {_num(c1[1])} "
            f"{_num(c2[0])} {_num(c2[1])} {_num(end[0])} {_num(end[1])}"
        )
        return path, end, (dx / norm, dy / norm), at

    def _legend(self) -> str:
        y = self.max_y + 28
        x = float(MARGIN)
        parts = ['<g data-legend="categories">']
        for category, (fill, stroke) in CATEGORY_COLOURS.items():
            parts.append(_rect(x, y - 10, 18, 14, 3, fill, stroke))
            parts.append(_text(x + 24, y + 1.5, category, LABEL_SIZE, anchor="start"))
            x += 24 + _text_width(category, LABEL_SIZE) + 18
        parts.append(f'<circle cx="{_num(x + 4)}" cy="{_num(y - 3)}" r="5" fill="{TEXT}"/>')
        parts.append(_text(x + 14, y + 1.5, "initial", LABEL_SIZE, anchor="start"))
        x += 14 + _text_width("initial", LABEL_SIZE) + 18
        parts.append(_rect(x - 2, y - 12, 22, 18, 4, "none", TEXT))
        parts.append(_rect(x + 1, y - 9, 16, 12, 2, "#ffffff", TEXT))
        parts.append(_text(x + 28, y + 1.5, "terminal", LABEL_SIZE, anchor="start"))
        x += 28 + _text_width("terminal", LABEL_SIZE)
        self._extend(x, y + 6)
        parts.append("</g>")
        return "".join(parts)


def _rect(x: float, y: float, w: float, h: float, r: float, fill: str, stroke: str) -> str:
    return (
        f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}" '
        f'rx="{_num(r)}" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
    )


def _text(
    x: float,
    y: float,
    text: str,
    size: float,
    *,
    weight: str = "normal",
    fill: str = TEXT,
    anchor: str = "middle",
    halo: bool = False,
) -> str:
    # A white outline painted under the glyphs keeps a label readable where it crosses a line.
    extra = ' stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke"'
    return (
        f'<text x="{_num(x)}" y="{_num(y)}" font-size="{_num(size)}" font-weight="{weight}" '
        f'fill="{fill}" text-anchor="{anchor}"{extra if halo else ""}>{escape(text)}</text>'
    )


def _arrowhead(tip: tuple[float, float], direction: tuple[float, float], colour: str) -> str:
    (x, y), (ux, uy) = tip, direction
    bx, by = x - ARROW_LEN * ux, y - ARROW_LEN * uy
    nx, ny = -uy * 4.5, ux * 4.5
    return (
        f'<path d="M{_num(x)} {_num(y)}L{_num(bx + nx)} {_num(by + ny)}'
        f'L{_num(bx - nx)} {_num(by - ny)}Z" fill="{colour}"/>'
    )


def _bezier(points: tuple[tuple[float, float], ...], t: float) -> tuple[float, float]:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = points
    a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
    return a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3


def _rounded(points: list[tuple[float, float]], radius: float) -> str:
    """A polyline whose corners are quarter curves of at most ``radius``."""
    path = f"M{_num(points[0][0])} {_num(points[0][1])}"
    for prev, here, nxt in zip(points, points[1:], points[2:], strict=False):
        r = min(radius, math.dist(prev, here) / 2, math.dist(here, nxt) / 2)
        a = _toward(here, prev, r)
        b = _toward(here, nxt, r)
        path += (
            f"L{_num(a[0])} {_num(a[1])}Q{_num(here[0])} {_num(here[1])} {_num(b[0])} {_num(b[1])}"
        )
    return path + f"L{_num(points[-1][0])} {_num(points[-1][1])}"


def _toward(
    origin: tuple[float, float], target: tuple[float, float], distance: float
) -> tuple[float, float]:
    length = math.dist(origin, target)
    if not length:
        return origin
    return (
        origin[0] + (target[0] - origin[0]) * distance / length,
        origin[1] + (target[1] - origin[1]) * distance / length,
    )


def render_svg(definition: dict[str, Any]) -> str:
    """The state diagram of a loaded workflow definition, as a standalone SVG document."""
    return _Diagram(definition).svg()
