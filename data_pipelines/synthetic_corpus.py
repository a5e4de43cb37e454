"""A deterministic synthetic grounding corpus, written in the public release formats.

The demo and the tests go through the real builders: this module writes

    DIR/tacos/{train,val,test}.json + tall_c3d_features.hdf5      (TACoS format)
    DIR/activitynet_captions/{train,val_1,val_2}.json
        + sub_activitynet_v1-3.c3d.hdf5                              (ActivityNet format)
    DIR/glove.synthetic.<d>d.txt                                     (GloVe text format)
    DIR/vocab.txt                                                    (BERT WordPiece vocab)
    DIR/srl.jsonl              (semantic roles, as AllenNLP's SRL predictor writes them)
    DIR/jsonl/{train,val,test}.jsonl + jsonl/features/<vid>.npz     (Moment-DETR format)

Both formats hold the same videos and sentences. How a video is made:
- A concept is a (verb, object) pair. Its clip prototype is the sum of a verb and an
  object prototype, so a model has to compose words to find it.
- Each video has 2-5 non-overlapping events of random length separated by background;
  an event's clips are its concept prototype plus Gaussian noise, background clips are
  a background prototype plus noise.
- With probability `repeat_probability` one concept happens twice in a video. Its two
  sentences then say "for the first/second time", or anchor it to a neighbouring event
  ("... before/after the person cuts the onion"), so only context disambiguates.
  Other sentences sometimes carry such a clause too, as a distractor.
- Sentences are listed in random order (not by time), as in the real releases.
Clips are 16 frames at 25 fps (0.64 s); times fall on clip boundaries.

The Moment-DETR copy (the `jsonl` builder's input, to try the bring-your-own-data
route): one line per sentence, `{"qid", "query", "vid", "duration",
"relevant_windows": [[start, end]]}` in seconds, with `qid` numbered over the three
splits, and `features/<vid>.npz` holding `features` `[clips, D]`. A video of n clips
lasts n * 0.64 s, so build it with `--clip_seconds=0.64` (`JSONL_CLIP_SECONDS`): every
video's clips then span its duration exactly, and none is skipped.
"""

from __future__ import annotations

import dataclasses
import json
import os

import h5py
import numpy as np

VERBS = ("opens", "closes", "washes", "cuts", "pours", "stirs", "peels", "holds")
OBJECTS = ("door", "bottle", "onion", "knife", "bowl", "cup", "carrot", "towel")
SUBJECTS = ("the person", "a man", "a woman", "someone")
ORDINALS = ("first", "second")
SPLITS = ("train", "val", "test")
ACTIVITYNET_FILES = {"train": "train.json", "val": "val_1.json", "test": "val_2.json"}
FRAMES_PER_CLIP = 16
FPS = 25.0
JSONL_CLIP_SECONDS = FRAMES_PER_CLIP / FPS  # --clip_seconds for the jsonl copy: 0.64
# A GloVe line whose token contains spaces, as glove.840B.300d.txt has.
SPACED_TOKEN = ". . ."


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
  """Everything the corpus depends on; the same spec writes the same bytes."""
  seed: int = 0
  num_videos: tuple[int, int, int] = (500, 100, 100)  # train, val, test
  min_clips: int = 48
  max_clips: int = 160
  feature_dim: int = 64
  num_concepts: int = 24
  min_events: int = 2
  max_events: int = 5
  noise: float = 1.0  # std of each feature entry around its prototype
  repeat_probability: float = 0.5
  clause_probability: float = 0.3  # a distractor clause on an unambiguous sentence
  glove_dim: int = 50

  def __post_init__(self):
    if not 0 < self.num_concepts <= len(VERBS) * len(OBJECTS):
      raise ValueError(f"num_concepts must be in 1..{len(VERBS) * len(OBJECTS)}")
    if not 2 <= self.min_events <= self.max_events:
      raise ValueError("need 2 <= min_events <= max_events")
    # Room for max_events events of >= 2 clips with background around each.
    if not 3 * self.max_events + 1 <= self.min_clips <= self.max_clips:
      raise ValueError("need 3 * max_events + 1 <= min_clips <= max_clips")


@dataclasses.dataclass
class SyntheticVideo:
  video_id: str
  features: np.ndarray  # [clips, feature_dim]
  spans: list[tuple[int, int]]  # per sentence: [start clip, end clip)
  sentences: list[str]


def vocabulary() -> list[str]:
  """Every word the generator can write, sorted."""
  words = {w for phrase in SUBJECTS for w in phrase.split()}
  words |= set(VERBS) | set(OBJECTS) | set(ORDINALS)
  words |= {"the", "for", "time", "before", "after"}
  return sorted(words)


def generate(spec: CorpusSpec) -> dict[str, list[SyntheticVideo]]:
  """The corpus in memory: `{split: [SyntheticVideo]}`."""
  proto_rng = np.random.default_rng([spec.seed, 0])
  verb_protos = proto_rng.normal(size=(len(VERBS), spec.feature_dim))
  object_protos = proto_rng.normal(size=(len(OBJECTS), spec.feature_dim))
  background = proto_rng.normal(size=spec.feature_dim) * 0.5
  pairs = [(v, o) for v in range(len(VERBS)) for o in range(len(OBJECTS))]
  concepts = [pairs[i] for i in proto_rng.permutation(len(pairs))[:spec.num_concepts]]
  prototypes = np.stack([(verb_protos[v] + object_protos[o]) / np.sqrt(2.0)
                         for v, o in concepts])
  corpus = {}
  for index, (split, count) in enumerate(zip(SPLITS, spec.num_videos)):
    rng = np.random.default_rng([spec.seed, index + 1])
    corpus[split] = [
        _video(f"{split}{i:05d}", rng, spec, concepts, prototypes, background)
        for i in range(count)
    ]
  return corpus


def write_corpus(directory: str, spec: CorpusSpec) -> dict[str, int]:
  """Writes every file listed in the module docstring; returns query counts by split."""
  corpus = generate(spec)
  tacos_dir = os.path.join(directory, "tacos")
  anet_dir = os.path.join(directory, "activitynet_captions")
  os.makedirs(tacos_dir, exist_ok=True)
  os.makedirs(anet_dir, exist_ok=True)
  clip_seconds = FRAMES_PER_CLIP / FPS
  with h5py.File(os.path.join(tacos_dir, "tall_c3d_features.hdf5"), "w") as tacos_h5, \
      h5py.File(os.path.join(anet_dir, "sub_activitynet_v1-3.c3d.hdf5"), "w") as anet_h5:
    for split, videos in corpus.items():
      tacos_json, anet_json = {}, {}
      for video in videos:
        tacos_id, anet_id = f"{video.video_id}.avi", f"v_{video.video_id}"
        tacos_h5[tacos_id] = video.features
        anet_h5.create_group(anet_id)["c3d_features"] = video.features
        tacos_json[tacos_id] = {
            "num_frames": len(video.features) * FRAMES_PER_CLIP,
            "fps": FPS,
            "timestamps": [[s * FRAMES_PER_CLIP, e * FRAMES_PER_CLIP]
                           for s, e in video.spans],
            "sentences": video.sentences,
        }
        anet_json[anet_id] = {
            "duration": round(len(video.features) * clip_seconds, 2),
            "timestamps": [[round(s * clip_seconds, 2), round(e * clip_seconds, 2)]
                           for s, e in video.spans],
            "sentences": video.sentences,
        }
      _write_json(os.path.join(tacos_dir, f"{split}.json"), tacos_json)
      _write_json(os.path.join(anet_dir, ACTIVITYNET_FILES[split]), anet_json)
  _write_glove(os.path.join(directory, f"glove.synthetic.{spec.glove_dim}d.txt"), spec)
  _write_wordpiece_vocab(os.path.join(directory, "vocab.txt"))
  sentences = sorted({s for videos in corpus.values() for v in videos for s in v.sentences})
  with open(os.path.join(directory, "srl.jsonl"), "w") as f:
    for sentence in sentences:
      f.write(json.dumps(srl_record(sentence)) + "\n")
  _write_moment_detr(os.path.join(directory, "jsonl"), corpus)
  return {split: sum(len(v.sentences) for v in videos) for split, videos in corpus.items()}


def srl_record(sentence: str) -> dict:
  """The record AllenNLP's SRL predictor would write for a synthetic sentence, read off
  its grammar: `SUBJECT VERB the OBJECT [for the first/second time | before/after
  SUBJECT VERB the OBJECT]`. Each verb's ARG0 is its subject, ARG1 "the OBJECT"; the
  main verb's trailing time phrase or clause is its ARGM-TMP."""
  words = sentence.split()
  verbs = [i for i, w in enumerate(words) if w in VERBS]
  frames = []
  for n, v in enumerate(verbs):
    start = 0 if n == 0 else v - len(_subject_before(words, v))
    tags = ["O"] * len(words)
    tags[start:v] = ["B-ARG0"] + ["I-ARG0"] * (v - start - 1)
    tags[v] = "B-V"
    tags[v + 1:v + 3] = ["B-ARG1", "I-ARG1"]
    if n == 0 and len(words) > v + 3:
      tags[v + 3:] = ["B-ARGM-TMP"] + ["I-ARGM-TMP"] * (len(words) - v - 4)
    frames.append({"verb": words[v], "description": "", "tags": tags})
  return {"verbs": frames, "words": words}


def _subject_before(words: list[str], verb: int) -> list[str]:
  """The SUBJECTS phrase ending right before `words[verb]`."""
  for subject in SUBJECTS:
    parts = subject.split()
    if words[verb - len(parts):verb] == parts:
      return parts
  raise ValueError(f"no subject before {words[verb]!r} in {' '.join(words)!r}")


def _video(video_id, rng, spec, concepts, prototypes, background) -> SyntheticVideo:
  num_clips = int(rng.integers(spec.min_clips, spec.max_clips + 1))
  num_events = int(rng.integers(spec.min_events, spec.max_events + 1))
  spans = _event_spans(rng, num_clips, num_events)
  event_concepts = list(rng.choice(len(concepts), size=num_events, replace=False))
  if rng.random() < spec.repeat_probability:
    a, b = rng.choice(num_events, size=2, replace=False)
    event_concepts[b] = event_concepts[a]

  features = background + spec.noise * rng.normal(size=(num_clips, spec.feature_dim))
  for (start, end), c in zip(spans, event_concepts):
    features[start:end] += prototypes[c] - background

  def phrase(event):
    verb, obj = concepts[event_concepts[event]]
    return f"{SUBJECTS[rng.integers(len(SUBJECTS))]} {VERBS[verb]} the {OBJECTS[obj]}"

  def clause(event):
    """'before/after <phrase of a neighbour whose concept is unique>', or None."""
    options = [(n, "before" if n > event else "after") for n in (event + 1, event - 1)
               if 0 <= n < num_events and event_concepts.count(event_concepts[n]) == 1]
    if not options:
      return None
    neighbour, word = options[rng.integers(len(options))]
    return f"{word} {phrase(neighbour)}"

  sentences = []
  for event in range(num_events):
    sentence = phrase(event)
    repeats = [e for e in range(num_events) if event_concepts[e] == event_concepts[event]]
    anchor = clause(event)
    if len(repeats) > 1:
      use_ordinal = anchor is None or rng.random() < 0.5
      sentence += (f" for the {ORDINALS[repeats.index(event)]} time" if use_ordinal
                   else f" {anchor}")
    elif anchor is not None and rng.random() < spec.clause_probability:
      sentence += f" {anchor}"
    sentences.append(sentence)
  order = rng.permutation(num_events)
  return SyntheticVideo(video_id, features.astype(np.float32),
                        [spans[i] for i in order], [sentences[i] for i in order])


def _event_spans(rng, num_clips: int, num_events: int) -> list[tuple[int, int]]:
  """`num_events` ordered, disjoint `[start, end)` clip spans with background between."""
  while True:
    lengths = rng.integers(max(2, num_clips // 16), max(3, num_clips // 4) + 1,
                           size=num_events)
    slack = num_clips - int(lengths.sum())
    if slack >= num_events + 1:
      break
  gaps = rng.multinomial(slack - (num_events + 1), np.ones(num_events + 1) / (num_events + 1))
  gaps += 1  # at least one background clip around every event
  spans, cursor = [], 0
  for length, gap in zip(lengths, gaps):
    start = cursor + int(gap)
    spans.append((start, start + int(length)))
    cursor = start + int(length)
  return spans


def _write_moment_detr(directory: str, corpus: dict[str, list[SyntheticVideo]]) -> None:
  """`{split}.jsonl` and `features/<vid>.npz` (module docstring)."""
  features_dir = os.path.join(directory, "features")
  os.makedirs(features_dir, exist_ok=True)
  seconds = lambda clips: round(clips * JSONL_CLIP_SECONDS, 2)
  qid = 0
  for split, videos in corpus.items():
    with open(os.path.join(directory, f"{split}.jsonl"), "w", encoding="utf-8") as f:
      for video in videos:
        np.savez(os.path.join(features_dir, f"{video.video_id}.npz"),
                 features=video.features)
        for (start, end), sentence in zip(video.spans, video.sentences):
          f.write(json.dumps({
              "qid": qid, "query": sentence, "vid": video.video_id,
              "duration": seconds(len(video.features)),
              "relevant_windows": [[seconds(start), seconds(end)]]}) + "\n")
          qid += 1


def _write_json(path: str, data: dict) -> None:
  with open(path, "w", encoding="utf-8") as f:
    json.dump(data, f)


def _write_glove(path: str, spec: CorpusSpec) -> None:
  """GloVe text format: `token v1 ... vd` per line, plus unused and spaced tokens."""
  rng = np.random.default_rng([spec.seed, 100])
  tokens = vocabulary() + [f"unused{i}" for i in range(20)] + [SPACED_TOKEN]
  with open(path, "w", encoding="utf-8") as f:
    for token in tokens:
      vector = " ".join(f"{x:.5f}" for x in rng.normal(scale=0.5, size=spec.glove_dim))
      f.write(f"{token} {vector}\n")


def _write_wordpiece_vocab(path: str) -> None:
  """BERT vocab: specials, every corpus word, and letters/##letters for the rest."""
  letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
  tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + vocabulary()
  tokens += [c for c in letters if c not in tokens] + [f"##{c}" for c in letters]
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(tokens) + "\n")
