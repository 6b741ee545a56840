"""Plan a clip's actors: shapes, looks, sizes, z-order, start positions and paths,
including the scripted events (a full occlusion, objects leaving and re-entering).

Each actor draws from its own generator (seeded by clip seed, role and index), so one
object's choices do not reshuffle another's.
"""

from __future__ import annotations

import cv2
import numpy as np

from vos_service.synth import cutouts, real_patches
from vos_service.synth.motion import Window, blend_towards, make_pose, plan_window, random_path, window_weight
from vos_service.synth.render import TEX_SPAN, Actor
from vos_service.synth.shapes import make_outline, make_wobble, outline_from_vertices, round_outline
from vos_service.synth.textures import TEXTURE_KINDS, make_texture, random_color, shift_color
from vos_service.synth.types import SynthOptions

__all__ = ["plan_actors"]

_TARGET, _DISTRACTOR, _EVENTS = 1, 2, 3  # roles in the per-actor seeds
_PLACEMENT_TRIES = 200
_MAX_OCCLUDER_GROWTH = 1.5  # an occluder grows at most this much to hide its victim
_OBJECT_TEXTURES = TEXTURE_KINDS


def _geometry(rng: np.random.Generator, label: int, opts: SynthOptions, T: int, size: tuple[int, int]) -> Actor:
    kind = opts.shape_kinds[int(rng.integers(len(opts.shape_kinds)))]
    radius = rng.uniform(*opts.object_size) * min(size)
    pose = make_pose(rng, T, radius, scale_change=opts.scale_change, max_rotation=opts.max_rotation,
                     stretch=opts.deformation * 0.5)
    return Actor(label=label, outline=make_outline(rng, kind), wobble=make_wobble(rng, opts.deformation * 0.5),
                 pose=pose)


def _mean_colour(texture: np.ndarray) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in np.round(texture.reshape(-1, 3).mean(axis=0)))
    return r, g, b


def _texture_size(actor: Actor) -> int:
    # Roughly one texture pixel per screen pixel at the actor's largest size.
    return int(np.clip(2 * np.ceil(TEX_SPAN * float(actor.pose.radius.max())), 16, 512))


def _dress(rng: np.random.Generator, actor: Actor, opts: SynthOptions, pool, may_cut: bool = True) -> None:
    """Give the actor a texture: a real patch (sometimes) or a procedural one around a colour;
    or (cutout_prob, when ``may_cut``) replace its outline and look by a region of a real frame."""
    s = _texture_size(actor)
    # Drawn only when enabled, so clips made without cut-outs keep their random streams.
    if may_cut and pool and opts.cutout_prob > 0 and rng.random() < opts.cutout_prob:
        frame = pool[int(rng.integers(len(pool)))]
        cut = cutouts.cut_object(rng, frame, s)
        if cut is not None:
            actor.outline, actor.texture = cut
            actor.texture_name = frame.name
            actor.color = _mean_colour(actor.texture)
            return
    use_real = rng.random() < opts.real_patch_prob
    base = np.round(random_color(rng))
    if use_real and pool:
        frame = pool[int(rng.integers(len(pool)))]
        tex, name = real_patches.crop_patch(rng, frame, s), frame.name
    else:
        kind = _OBJECT_TEXTURES[int(rng.integers(len(_OBJECT_TEXTURES)))]
        tex, name = make_texture(rng, s, s, kind, base, scale=s / 64), kind
    mean = tex.reshape(-1, 3).mean(axis=0)
    flat = mean if name.startswith("real:") else base
    tex = flat + np.float32(opts.texture_strength) * (tex - flat)
    actor.texture = np.clip(tex, 0, 255).astype(np.float32)
    actor.texture_name = name
    actor.color = _mean_colour(actor.texture)


def _lookalike(rng: np.random.Generator, actor: Actor, model: Actor) -> None:
    """Copy ``model``'s outline kind and look, slightly varied in shape, size and colour."""
    v = model.outline.vertices * rng.uniform(0.92, 1.08, (len(model.outline.vertices), 1))
    actor.outline = outline_from_vertices(model.outline.kind, v)
    actor.pose = actor.pose.scaled(float(model.pose.radius[0] / actor.pose.radius[0]) * rng.uniform(0.85, 1.15))
    s = _texture_size(actor)
    tex = cv2.resize(model.texture, (s, s), interpolation=cv2.INTER_LINEAR)
    shift = shift_color(rng, np.array(model.color, np.float32), 0.12) - np.array(model.color, np.float32)
    actor.texture = np.clip(tex + shift, 0, 255).astype(np.float32)
    actor.texture_name = model.texture_name
    actor.color = _mean_colour(actor.texture)
    actor.lookalike_of = model.label


def _place(rng: np.random.Generator, actors: list[Actor], size: tuple[int, int]) -> list[np.ndarray]:
    """Start positions (``actors`` back to front) such that, in frame 0, no actor covers a
    tracked one below it.

    Tracked actors start fully inside the frame; in a crowded frame one may start partly
    covered by another tracked actor. An untracked actor that cannot be placed clear
    starts outside the frame and walks in.
    """
    h, w = size
    ext = [float(a.pose.extent(a.wobble.max_amp)[0]) for a in actors]
    starts: list[np.ndarray] = []
    for i, a in enumerate(actors):
        # A target starts fully inside (its centre at least its reach from every edge).
        m = min(ext[i], 0.45 * min(h, w)) if a.label else 0.0
        # Actors are placed back to front, so every placed actor is below this one: keep
        # clear of the tracked ones, which this actor would otherwise cover.
        others = [j for j in range(i) if actors[j].label]
        best, best_gap = None, -np.inf
        for _ in range(_PLACEMENT_TRIES):
            p = np.array([rng.uniform(m, w - m), rng.uniform(m, h - m)])
            gap = min((np.hypot(*(p - starts[j])) - ext[i] - ext[j] for j in others), default=np.inf)
            if gap > best_gap:
                best, best_gap = p, gap
            if gap >= 1:
                break
        if best_gap < 1 and not a.label:
            # An untracked actor that would cover a tracked one walks in from outside instead.
            edge = ext[i] + 2
            best = [np.array([-edge, h / 2]), np.array([w + edge, h / 2]),
                    np.array([w / 2, -edge]), np.array([w / 2, h + edge])][int(rng.integers(4))]
        # A tracked actor keeps the roomiest spot found: it may start partly covered.
        assert best is not None  # the first try always beats -inf
        starts.append(best)
    return starts


def _exit_point(pos: np.ndarray, reach: float, size: tuple[int, int]) -> np.ndarray:
    """A point just past the nearest frame edge, far enough that nothing of the actor shows."""
    h, w = size
    x, y = pos
    dists = [x, w - x, y, h - y]
    side = int(np.argmin(dists))
    return [np.array([-reach, y]), np.array([w + reach, y]), np.array([x, -reach]), np.array([x, h + reach])][side]


def plan_actors(seed: int, num_objects: int, opts: SynthOptions, num_frames: int, size: tuple[int, int],
                pool: tuple, shake_bound: float) -> list[Actor]:
    """All actors of a clip, in drawing order (back to front), with paths and looks."""
    T = num_frames
    targets = []
    for label in range(1, num_objects + 1):
        rng = np.random.default_rng([seed, _TARGET, label])
        a = _geometry(rng, label, opts, T, size)
        _dress(rng, a, opts, pool)
        targets.append(a)

    ev = np.random.default_rng([seed, _EVENTS])
    distractors = []
    for k in range(int(ev.integers(opts.num_distractors[0], opts.num_distractors[1] + 1))):
        rng = np.random.default_rng([seed, _DISTRACTOR, k])
        d = _geometry(rng, 0, opts, T, size)
        if targets and rng.random() < opts.lookalike_prob:
            _lookalike(rng, d, targets[int(rng.integers(len(targets)))])
        else:
            _dress(rng, d, opts, pool)
        distractors.append(d)

    # Scripted full occlusion: the smallest target hides behind a round untracked occluder.
    occ_win: Window | None = None
    victim = occluder = None
    if targets and ev.random() < opts.occlusion_prob:
        occ_win = plan_window(ev, T)
    if occ_win is not None:
        victim = min(targets, key=lambda a: float(a.pose.extent(a.wobble.max_amp).max()))
        rng = np.random.default_rng([seed, _DISTRACTOR, 1000])
        plain = [d for d in distractors if d.lookalike_of is None]
        occluder = plain[0] if plain else _geometry(rng, 0, opts, T, size)
        occluder.outline = round_outline(rng)
        occluder.wobble = make_wobble(rng, opts.deformation * 0.25)
        held = slice(occ_win.full, occ_win.release + 1)

        def growth() -> float:  # how much the occluder must grow to hide the victim while held
            need = victim.pose.extent(victim.wobble.max_amp)[held] + 2.0
            have = occluder.pose.reach_inside(occluder.outline.inner, occluder.wobble.max_amp)[held]
            return max(1.0, float((need / have).max())) * 1.05

        if growth() > _MAX_OCCLUDER_GROWTH:  # rather than a giant occluder, a smaller victim
            victim.pose = victim.pose.scaled(_MAX_OCCLUDER_GROWTH / growth())
        occluder.pose = occluder.pose.scaled(growth())
        occluder.occludes = (victim.label, occ_win.full, occ_win.release)
        _dress(rng, occluder, opts, pool, may_cut=False)  # its round outline is what hides the victim
        if occluder not in distractors:
            distractors.append(occluder)

    actors = targets + distractors
    for z, i in enumerate(ev.permutation(len(actors))):
        actors[int(i)].z = z
    if occluder is not None:
        occluder.z = len(actors)  # in front of everything, the victim included
    actors.sort(key=lambda a: a.z)

    starts = _place(ev, actors, size)
    speed = opts.max_speed * min(size)
    for a, start in zip(actors, starts):
        margin = 0.3 * float(a.pose.radius.mean())
        a.path = random_path(ev, T, start, size, speed, margin)

    # Objects leaving and re-entering: pulled to a point past the nearest edge while held.
    for a in targets:
        if a is victim or ev.random() >= opts.leave_reenter_prob:
            continue
        win = plan_window(ev, T)
        if win is None:
            continue
        reach = float(a.pose.extent(a.wobble.max_amp).max()) + shake_bound + 2.0
        out = _exit_point(a.path[win.full], reach, size)
        a.path = blend_towards(a.path, out, window_weight(T, win))
        a.leaves = win.held

    if victim is not None and occluder is not None and occ_win is not None:  # planned together
        occluder.path = blend_towards(occluder.path, victim.path, window_weight(T, occ_win))
    return actors
