"""The workflow diagram: valid standalone SVG with every state and transition, escaped text,
the initial state on the left, and the same picture for the same definition."""

import copy
import xml.etree.ElementTree as ET

from workflows import default_definition, load_definition
from workflows.diagram import render_svg

SVG = "{http://www.w3.org/2000/svg}"


def draft() -> dict:
    return copy.deepcopy(default_definition())


def parse(svg: str) -> ET.Element:
    # Our own output, not untrusted input; bytes because the document declares its encoding.
    return ET.fromstring(svg.encode())  # noqa: S314


def groups(root: ET.Element, attribute: str) -> dict[str, ET.Element]:
    return {g.attrib[attribute]: g for g in root.iter(f"{SVG}g") if attribute in g.attrib}


def edges_of(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if "data-transition" in g.attrib]


def box_x(group: ET.Element) -> float:
    return min(float(r.attrib["x"]) for r in group.iter(f"{SVG}rect"))


def small_flow() -> dict:
    return {
        "name": "small",
        "initial": "new",
        "states": [
            {"name": "new", "category": "new"},
            {"name": "waiting", "category": "pending", "label": 'Waiting <customer> & "co"'},
            {"name": "done", "category": "closed", "terminal": True},
        ],
        "transitions": [
            {"name": "wait", "from": ["new"], "to": "waiting", "roles": ["agent"]},
            {"name": "nudge", "from": ["waiting"], "to": "waiting", "roles": ["agent"]},
            {"name": "answer", "from": ["waiting"], "to": "new", "roles": ["customer"]},
            {"name": "finish", "from": ["new", "waiting"], "to": "done", "roles": ["agent"]},
            {"name": "drop", "from": ["new"], "to": "done", "roles": ["admin"]},
        ],
    }


def test_default_workflow_renders_every_state_and_transition():
    definition = load_definition(default_definition())
    root = parse(render_svg(definition))

    assert root.tag == f"{SVG}svg"
    assert set(groups(root, "data-state")) == {s["name"] for s in definition["states"]}
    edges = edges_of(root)
    drawn = {name for g in edges for name in g.attrib["data-transition"].split(",")}
    assert drawn == {t["name"] for t in definition["transitions"]}
    pairs = {(g.attrib["data-source"], g.attrib["data-dest"]) for g in edges}
    expected = {(src, t["dest"]) for t in definition["transitions"] for src in t["source"]}
    assert pairs == expected
    assert all(g.find(f"{SVG}title") is not None for g in edges)


def test_size_and_view_box_come_from_the_layout_and_hold_every_box():
    root = parse(render_svg(load_definition(default_definition())))

    width, height = float(root.attrib["width"]), float(root.attrib["height"])
    assert root.attrib["viewBox"] == f"0 0 {root.attrib['width']} {root.attrib['height']}"
    boxes = [r for g in groups(root, "data-state").values() for r in g.iter(f"{SVG}rect")]
    assert boxes
    for rect in boxes:
        assert 0 <= float(rect.attrib["x"]) <= width - float(rect.attrib["width"])
        assert 0 <= float(rect.attrib["y"]) <= height - float(rect.attrib["height"])


def test_initial_state_is_alone_in_the_leftmost_layer():
    definition = draft()
    definition["states"].append({"name": "triage", "category": "new", "label": "Triage"})
    definition["transitions"].append(
        {"name": "triage", "from": ["triage"], "to": "open", "roles": ["agent"]}
    )
    start = next(t for t in definition["transitions"] if t["name"] == "start")
    start["from"] = ["new", "triage"]
    definition["states"].insert(0, definition["states"].pop())  # listed before the initial
    definition["transitions"].append(
        {"name": "to_triage", "from": ["new"], "to": "triage", "roles": ["agent"]}
    )
    states = groups(parse(render_svg(load_definition(definition))), "data-state")

    initial = box_x(states["new"])
    assert all(box_x(g) > initial for name, g in states.items() if name != "new")
    assert box_x(states["triage"]) == box_x(states["open"])  # both one step from new


def test_markup_in_labels_and_names_is_escaped():
    loaded = load_definition(small_flow())
    loaded["transitions"][0]["label"] = "Ask <them> & wait"
    # Names are validated to [a-z0-9_], but the renderer must not trust that.
    loaded["transitions"][1]["name"] = 'nudge"<&>'
    svg = render_svg(loaded)
    root = parse(svg)

    assert 'Waiting <customer> & "co"' not in svg
    assert "Waiting &lt;customer&gt; &amp;" in svg
    texts = {"".join(t.itertext()) for t in root.iter(f"{SVG}text")}
    assert 'Waiting <customer> & "co"' in texts
    assert 'nudge"<&>' in groups(root, "data-transition")
    titles = "".join(t.text or "" for t in root.iter(f"{SVG}title"))
    assert "Ask <them> & wait" in titles


def test_transitions_sharing_a_pair_are_one_edge_and_self_loops_are_drawn():
    edges = groups(parse(render_svg(load_definition(small_flow()))), "data-transition")

    assert set(edges) == {"wait", "nudge", "answer", "finish", "finish,drop"}
    assert (edges["nudge"].attrib["data-source"], edges["nudge"].attrib["data-dest"]) == (
        "waiting",
        "waiting",
    )
    label = "".join(edges["finish,drop"].find(f"{SVG}text").itertext())
    assert label == "finish, drop"
    titles = edges["finish,drop"].find(f"{SVG}title").text
    assert "roles: agent" in titles
    assert "roles: admin" in titles


def test_terminal_states_have_a_double_border():
    states = groups(parse(render_svg(load_definition(small_flow()))), "data-state")

    assert len(list(states["done"].iter(f"{SVG}rect"))) == 2
    assert len(list(states["waiting"].iter(f"{SVG}rect"))) == 1


def test_same_definition_gives_the_same_svg():
    assert render_svg(load_definition(draft())) == render_svg(load_definition(draft()))
    assert render_svg(load_definition(small_flow())) == render_svg(load_definition(small_flow()))


def test_an_added_state_adds_one_box():
    before = groups(parse(render_svg(load_definition(draft()))), "data-state")
    definition = draft()
    definition["states"].append({"name": "escalated", "category": "open", "label": "Escalated"})
    definition["transitions"] += [
        {"name": "escalate", "from": ["open"], "to": "escalated", "roles": ["agent"]},
        {"name": "de_escalate", "from": ["escalated"], "to": "open", "roles": ["admin"]},
    ]
    root = parse(render_svg(load_definition(definition)))
    after = groups(root, "data-state")

    assert set(after) == set(before) | {"escalated"}
    assert {"escalate", "de_escalate"} <= set(groups(root, "data-transition"))
