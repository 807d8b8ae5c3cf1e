"""The people of a recording: person rows in any number, their track ids, and which of them a window is run on.

A recording is held as `joints` `(slots, frames, joints, channels)` and `track_ids` `(slots, frames)`: row s of frame
t holds the person whose track id is `track_ids[s, t]`, or nobody (id -1, joints all zeros). Without track ids, row s
is track s throughout. With per-frame ids (what a tracker gives), the rows are detection slots and a track may move
between them from frame to frame. A person's frame that holds a NaN or infinite coordinate is missing (the whole
person's frame becomes zeros: a pose estimator's failed detection), as is an all-zero one.

Policies (`persons=`):
- `"most_active"` (default): each window is one clip of the model's `max_persons` (2) tracks that move most in it
  (motion: the sum over x, y, z of the variance of the track's joint positions over its present frames, the measure
  by which the NTU preparation, `mamp_hub.data.prepare_ntu`, ranks bodies), most active first, and the frames where
  none of them is present are left out, as the NTU preparation removes frames without an actor.
- `"each"`: each track present in a window is a clip of its own (one person, its present frames).

With `centre=True`, each clip of NTU joints is moved as the NTU preparation moves a sample: its first person's
spine-middle joint in its first frame to the origin (`centre_on_first_frame`). The standard NTU files are centred so,
while a recording in camera coordinates is not; joints of another skeleton source are centred so by the processor in
any case, and the PKU-MMD files are not centred at all: centre for a checkpoint trained on centred clips.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..checks import checked, flag
from ..skeletons.layouts import LAYOUT_NDIMS, as_float_array, centre_on_first_frame, resolve_layout
from ..skeletons.sources import SOURCE_JOINT_COUNTS

PERSON_POLICIES: tuple[str, ...] = ("most_active", "each")
NO_TRACK = -1


@dataclass
class Recording:
    """Frames of a recording (or of a window of it), every person's frame in a slot.

    Attributes:
        joints: (slots, frames, joints, channels) float32, zeros where a slot holds nobody.
        track_ids: (slots, frames) int64, the track in each slot, `NO_TRACK` where it holds nobody.
    """

    joints: np.ndarray
    track_ids: np.ndarray

    @property
    def frames(self) -> int:
        return self.joints.shape[1]

    def present(self) -> np.ndarray:
        """(frames,) bool: someone is present."""
        return (self.track_ids >= 0).any(axis=0)

    def window(self, start: int, end: int) -> Recording:
        return Recording(self.joints[:, start:end], self.track_ids[:, start:end])

    @classmethod
    def from_rows(cls, joints: np.ndarray, track_ids: np.ndarray) -> Recording:
        """The recording of person rows `(slots, frames, joints, channels)` and their ids `(slots, frames)`: a person's
        frame is present when its id is not negative and its coordinates are finite and not all zero; every other
        one becomes zeros with id `NO_TRACK` (in a copy: the caller's arrays are not changed)."""
        present = (track_ids >= 0) & np.isfinite(joints).all(axis=(2, 3)) & (joints != 0).any(axis=(2, 3))
        return cls(np.where(present[..., None, None], joints, np.float32(0)), np.where(present, track_ids, NO_TRACK))


def read_recording(recording: Any, processor: Any, layout: str | None = None, tracks: Any = None) -> Recording:
    """A recording in any array layout the processor reads, with any number of persons, as a `Recording`.

    Args:
        recording: a numpy array or torch tensor: `(frames, joints, channels)` (one person), `(persons, frames,
            joints, channels)`, NTU rows `(frames, persons * joints * channels)` or `(channels, frames, joints,
            persons)`, with the joints the processor reads (`joint_layout`); any number of persons.
        processor: the `MampSkeletonProcessor` whose joint options apply.
        layout: the layout's name (`"TVC"`, `"MTVC"`, `"ntu_flat"`, `"CTVM"`) when the shape fits several; a 4-D
            array that fits both is read as `"MTVC"` (persons first).
        tracks: None (person row s is track s), `(persons,)` integer track ids, one per row, or `(persons, frames)`
            per-frame ids (a negative id: nobody in that row in that frame).

    Raises:
        ValueError: no frames, a shape that fits no layout, or track ids of the wrong shape or type, or a track id in
            two rows of one frame.
    """
    joints = person_rows(as_float_array(recording, "The recording"), processor, layout)
    if joints.shape[1] == 0:
        raise ValueError(f"The recording of shape {tuple(np.shape(recording))} has no frames; pass at least one frame.")
    return Recording.from_rows(joints, checked_track_ids(tracks, *joints.shape[:2]))


def person_rows(array: np.ndarray, processor: Any, layout: str | None = None, what: str = "a recording") -> np.ndarray:
    """A recording's array -> `(persons, frames, joints, channels)`, for any number of persons (see `read_recording`).
    A view of `array` where its layout allows; `what` names the array in errors."""
    dims = {
        "joint_layout": processor.joint_layout,
        "num_joints": processor.num_joints,
        "num_channels": processor.num_channels,
        "max_persons": max(array.shape, default=1),  # no limit: any number the shape can hold
    }
    if layout is None and array.ndim == 4:
        # Persons first is the form for many people: a (3, T, V, 3) array is three persons, not the feeders' CTVM.
        with contextlib.suppress(ValueError):
            layout = resolve_layout(array.shape, "MTVC", False, **dims)[0]
    if layout is not None and layout not in LAYOUT_NDIMS:
        resolve_layout(array.shape, layout, False, **dims)  # raises: an unknown layout
    try:
        layout = resolve_layout(array.shape, layout, False, **dims)[0]
    except ValueError:
        if processor.joint_layout == "ntu":
            joints = f"{processor.num_joints} joints of {processor.num_channels} values"
            forms = "(frames, joints, channels), (persons, frames, joints, channels), NTU rows (frames, persons * "
            forms += "joints * channels) or (channels, frames, joints, persons)"
        else:
            counts = " or ".join(map(str, SOURCE_JOINT_COUNTS[processor.joint_layout]))
            joints = f"{processor.joint_layout!r} joints ({counts} joints of 3 coordinates)"
            forms = "(frames, joints, 3) or (persons, frames, joints, 3)"
        raise ValueError(
            f"Got {what} of shape {array.shape}, which fits no layout{f' {layout!r}' if layout else ''} of {joints}; "
            f"pass {forms}."
        ) from None
    if layout == "TVC":
        return array[None]
    if layout == "CTVM":
        return array.transpose(3, 1, 2, 0)
    if layout == "ntu_flat":
        joints, channels = processor.num_joints, processor.num_channels
        return array.reshape(len(array), array.shape[1] // (joints * channels), joints, channels).transpose(1, 0, 2, 3)
    return array  # MTVC


def checked_track_ids(tracks: Any, persons: int, frames: int) -> np.ndarray:
    """`tracks` (see `read_recording`) as `(persons, frames)` int64 ids; raises `ValueError` naming what is wrong."""
    if tracks is None:
        return np.broadcast_to(np.arange(persons, dtype=np.int64)[:, None], (persons, frames))
    ids = tracks.detach().cpu().numpy() if hasattr(tracks, "detach") else np.asarray(tracks)
    if ids.dtype.kind not in "iu":
        raise ValueError(f"tracks must hold integer track ids, got an array of dtype {ids.dtype}.")
    if ids.shape == (persons,):
        ids = np.broadcast_to(ids[:, None], (persons, frames))
    elif ids.shape != (persons, frames):
        raise ValueError(
            f"tracks has shape {ids.shape}, but the frames have {persons} person rows of {frames} frames; pass one id "
            f"per row, ({persons},), or one per row and frame, ({persons}, {frames})."
        )
    ids = ids.astype(np.int64)
    ordered = np.sort(ids, axis=0)
    repeated = (ordered[1:] == ordered[:-1]) & (ordered[1:] >= 0)
    if repeated.any():
        row, frame = np.argwhere(repeated)[0]
        raise ValueError(
            f"Track id {ordered[row + 1, frame]} is in two person rows of frame {frame}; a track is one person, give "
            "each person row of a frame its own id (a negative id for an empty row)."
        )
    return ids


def checked_policy(persons: Any) -> str:
    if persons not in PERSON_POLICIES:
        raise ValueError(
            f"persons must be one of {list(PERSON_POLICIES)}, got {persons!r}: 'most_active' runs each window on its "
            "most active people, 'each' on every person (track) separately."
        )
    return persons


def checked_centre(centre: Any, processor: Any) -> bool:
    """Whether window clips are to be centred here: `centre` for NTU joints (the processor centres other sources'
    joints itself); raises `ValueError` unless `centre` is a bool and NTU joints are the 25 of 3 coordinates."""
    if not checked("centre", flag, centre) or processor.joint_layout != "ntu":
        return False
    if (processor.num_joints, processor.num_channels) != (25, 3):
        raise ValueError(
            f"centre=True moves the NTU spine-middle joint to the origin, but the processor reads {processor.num_joints} "
            f"joints of {processor.num_channels} values; centre your clips yourself, or pass centre=False."
        )
    return True


def window_clips(
    window: Recording, persons: str, max_persons: int, centre: bool = False
) -> list[tuple[int | None, np.ndarray | None]]:
    """The clips that a window is recognised from, as `(track, clip)` pairs; `clip` is `(people, frames, joints,
    channels)` (frames without any of its people left out), centred if `centre` (NTU joints, see `checked_centre`).

    `persons="most_active"`: one pair `(None, clip)` of the `max_persons` most active tracks (see the module's
    docstring), most active first, or `(None, None)` when nobody is present. `"each"`: `(track id, one-person clip)`
    for each track present, in ascending id order (none when nobody is present).
    """
    track_ids, tracks, present = _tracks(window)
    if persons == "each":
        clips = [(int(track), tracks[k : k + 1, present[k]]) for k, track in enumerate(track_ids)]
    elif len(track_ids) == 0:
        return [(None, None)]
    else:
        chosen = np.argsort(-_motion(tracks, present), kind="stable")[:max_persons]  # ties: the lower id first
        clips = [(None, tracks[chosen][:, present[chosen].any(axis=0)])]
    return [(track, _centred(clip) if centre else clip) for track, clip in clips]


def _centred(clip: np.ndarray) -> np.ndarray:
    """A `(people, frames, 25, 3)` clip moved by `centre_on_first_frame` (on its time-major rows)."""
    people, frames = clip.shape[:2]
    rows = np.ascontiguousarray(clip.transpose(1, 0, 2, 3)).reshape(frames, people * 75)
    return centre_on_first_frame(rows).reshape(frames, people, 25, 3).transpose(1, 0, 2, 3)


def _tracks(window: Recording) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The window's tracks: their ids `(K,)` ascending, their joints `(K, frames, joints, channels)` (zeros where
    absent) and their presence `(K, frames)`, gathered from whichever slots hold them frame by frame."""
    slot, frame = np.nonzero(window.track_ids >= 0)
    ids = window.track_ids[slot, frame]
    track_ids, rows = np.unique(ids, return_inverse=True)
    tracks = np.zeros((len(track_ids), *window.joints.shape[1:]), dtype=np.float32)
    tracks[rows, frame] = window.joints[slot, frame]
    present = np.zeros((len(track_ids), window.frames), dtype=bool)
    present[rows, frame] = True
    return track_ids, tracks, present


def _motion(tracks: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(K,) the sum over coordinates of the variance of each track's joint positions over its present frames."""
    count = present.sum(axis=1)[:, None] * tracks.shape[2]  # (K, 1) joint positions per track
    mean = tracks.sum(axis=(1, 2), dtype=np.float64) / count  # (K, C); absent frames are zeros
    deviation = np.where(present[..., None, None], tracks - mean[:, None, None], 0)
    return ((deviation**2).sum(axis=(1, 2)) / count).sum(axis=1)
