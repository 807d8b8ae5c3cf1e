"""Joint layouts and action-name tables of the skeleton benchmarks.

The NTU RGB+D layout is the 25-joint Kinect v2 skeleton; PKU-MMD was captured with the same sensor and
uses the same joints in the same order. Indices here are 0-based; the NTU documentation counts from 1.
"""

from __future__ import annotations

NTU_JOINT_NAMES: tuple[str, ...] = (
    "spine_base",  # 1 in the NTU documentation
    "spine_mid",  # 2: the origin of the standard NTU files (first frame, first actor)
    "neck",
    "head",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "left_hand",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "right_hand",
    "left_hip",
    "left_knee",
    "left_ankle",
    "left_foot",
    "right_hip",
    "right_knee",
    "right_ankle",
    "right_foot",
    "spine_shoulder",  # 21
    "left_hand_tip",
    "left_thumb",
    "right_hand_tip",
    "right_thumb",
)
NUM_NTU_JOINTS = len(NTU_JOINT_NAMES)

# Kinematic tree rooted at the spine base: NTU_PARENTS[j] is the joint that j hangs from (-1 for the root).
NTU_PARENTS: tuple[int, ...] = (
    -1,  # spine_base
    0,  # spine_mid
    20,  # neck <- spine_shoulder
    2,  # head
    20,  # left_shoulder
    4,
    5,
    6,  # left_hand
    20,  # right_shoulder
    8,
    9,
    10,  # right_hand
    0,  # left_hip
    12,
    13,
    14,  # left_foot
    0,  # right_hip
    16,
    17,
    18,  # right_foot
    1,  # spine_shoulder <- spine_mid
    7,  # left_hand_tip <- left_hand
    7,  # left_thumb <- left_hand
    11,  # right_hand_tip <- right_hand
    11,  # right_thumb <- right_hand
)

# (child, parent) pairs: the 24 bones of the skeleton.
NTU_BONES: tuple[tuple[int, int], ...] = tuple(
    (joint, parent) for joint, parent in enumerate(NTU_PARENTS) if parent >= 0
)

# Left/right joint pairs: swapping them mirrors a skeleton (after negating the lateral coordinate).
NTU_MIRROR_PAIRS: tuple[tuple[int, int], ...] = (
    (4, 8),
    (5, 9),
    (6, 10),
    (7, 11),
    (12, 16),
    (13, 17),
    (14, 18),
    (15, 19),
    (21, 23),
    (22, 24),
)

NTU60_ACTION_NAMES: tuple[str, ...] = (
    "drink water",
    "eat meal/snack",
    "brushing teeth",
    "brushing hair",
    "drop",
    "pickup",
    "throw",
    "sitting down",
    "standing up (from sitting position)",
    "clapping",
    "reading",
    "writing",
    "tear up paper",
    "wear jacket",
    "take off jacket",
    "wear a shoe",
    "take off a shoe",
    "wear on glasses",
    "take off glasses",
    "put on a hat/cap",
    "take off a hat/cap",
    "cheer up",
    "hand waving",
    "kicking something",
    "reach into pocket",
    "hopping (one foot jumping)",
    "jump up",
    "make a phone call/answer phone",
    "playing with phone/tablet",
    "typing on a keyboard",
    "pointing to something with finger",
    "taking a selfie",
    "check time (from watch)",
    "rub two hands together",
    "nod head/bow",
    "shake head",
    "wipe face",
    "salute",
    "put the palms together",
    "cross hands in front (say stop)",
    "sneeze/cough",
    "staggering",
    "falling",
    "touch head (headache)",
    "touch chest (stomachache/heart pain)",
    "touch back (backache)",
    "touch neck (neckache)",
    "nausea or vomiting condition",
    "use a fan (with hand or paper)/feeling warm",
    "punching/slapping other person",
    "kicking other person",
    "pushing other person",
    "pat on back of other person",
    "point finger at the other person",
    "hugging other person",
    "giving something to other person",
    "touch other person's pocket",
    "handshaking",
    "walking towards each other",
    "walking apart from each other",
)

# NTU RGB+D 120 keeps the 60 classes above and appends these (A61-A120).
NTU120_ACTION_NAMES: tuple[str, ...] = (
    *NTU60_ACTION_NAMES,
    "put on headphone",
    "take off headphone",
    "shoot at the basket",
    "bounce ball",
    "tennis bat swing",
    "juggling table tennis balls",
    "hush (quite)",
    "flick hair",
    "thumb up",
    "thumb down",
    "make ok sign",
    "make victory sign",
    "staple book",
    "counting money",
    "cutting nails",
    "cutting paper (using scissors)",
    "snapping fingers",
    "open bottle",
    "sniff (smell)",
    "squat down",
    "toss a coin",
    "fold paper",
    "ball up paper",
    "play magic cube",
    "apply cream on face",
    "apply cream on hand back",
    "put on bag",
    "take off bag",
    "put something into a bag",
    "take something out of a bag",
    "open a box",
    "move heavy objects",
    "shake fist",
    "throw up cap/hat",
    "hands up (both hands)",
    "cross arms",
    "arm circles",
    "arm swings",
    "running on the spot",
    "butt kicks (kick backward)",
    "cross toe touch",
    "side kick",
    "yawn",
    "stretch oneself",
    "blow nose",
    "hit other person with something",
    "wield knife towards other person",
    "knock over other person (hit with body)",
    "grab other person's stuff",
    "shoot at other person with a gun",
    "step on foot",
    "high-five",
    "cheers and drink",
    "carry something with other person",
    "take a photo of other person",
    "follow other person",
    "whisper in other person's ear",
    "exchange things with other person",
    "support somebody with hand",
    "finger-guessing game (playing rock-paper-scissors)",
)

# PKU-MMD label ids 1..51 (phase I and II share the table; the label files count from 1).
PKU_MMD_ACTION_NAMES: tuple[str, ...] = (
    "bow",
    "brushing hair",
    "brushing teeth",
    "check time (from watch)",
    "cheer up",
    "clapping",
    "cross hands in front (say stop)",
    "drink water",
    "drop",
    "eat meal/snack",
    "falling",
    "giving something to other person",
    "hand waving",
    "handshaking",
    "hopping (one foot jumping)",
    "hugging other person",
    "jump up",
    "kicking other person",
    "kicking something",
    "make a phone call/answer phone",
    "pat on back of other person",
    "pickup",
    "playing with phone/tablet",
    "point finger at the other person",
    "pointing to something with finger",
    "punching/slapping other person",
    "pushing other person",
    "put on a hat/cap",
    "put something inside pocket",
    "reading",
    "rub two hands together",
    "salute",
    "sitting down",
    "standing up",
    "take off a hat/cap",
    "take off glasses",
    "take off jacket",
    "take out something from pocket",
    "taking a selfie",
    "tear up paper",
    "throw",
    "touch back (backache)",
    "touch chest (stomachache/heart pain)",
    "touch head (headache)",
    "touch neck (neckache)",
    "typing on a keyboard",
    "use a fan (with hand or paper)/feeling warm",
    "wear jacket",
    "wear on glasses",
    "wipe face",
    "writing",
)

ACTION_NAMES: dict[str, tuple[str, ...]] = {
    "ntu60": NTU60_ACTION_NAMES,
    "ntu120": NTU120_ACTION_NAMES,
    "pku_mmd": PKU_MMD_ACTION_NAMES,
}


def get_id2label(dataset: str) -> dict[int, str]:
    """Class index -> action name for a benchmark, in the form `PretrainedConfig(id2label=...)` takes.

    Args:
        dataset: `"ntu60"`, `"ntu120"` or `"pku_mmd"` (PKU-MMD phase I and II share the 51-class table).
    """
    if not isinstance(dataset, str) or dataset not in ACTION_NAMES:
        raise ValueError(f"Unknown data set {dataset!r}; pass one of {sorted(ACTION_NAMES)}.")
    return dict(enumerate(ACTION_NAMES[dataset]))
