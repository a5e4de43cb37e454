"""Readers for the public annotation releases, with validation and a build report.

Pure Python (no TensorFlow). Each reader turns one split's release files into
`Video` records (times in seconds) and records in a `BuildReport` every query it
had to skip or clip. Files that cannot be parsed at all raise `FormatError`, whose
message names the file, the video id (or line) and the field.

Formats (as distributed with microsoft/2D-TAN, `data/`):
- TACoS `{train,val,test}.json`: `{vid: {"num_frames", "fps", "timestamps":
  [[start_frame, end_frame], ...], "sentences": [...]}}`; seconds = frame / fps,
  duration = num_frames / fps.
- ActivityNet Captions `train.json`, `val_1.json`/`val.json`, `val_2.json`/`test.json`:
  `{vid: {"duration", "timestamps": [[start, end], ...] (seconds), "sentences"}}`.
- Charades-STA `charades_sta_{train,test}.txt`: lines `VID START END##sentence`;
  durations from `Charades_v1_{train,test}.csv`, column `length`.
- Moment-DETR's JSON lines (QVHighlights `highlight_{train,val}_release.jsonl`, the
  format of QD-DETR, CG-DETR and Lighthouse): one object a line with `qid` (int or
  string), `query`, `vid`, `duration` and `relevant_windows` [[start, end], ...] in
  seconds; other keys are ignored (`read_jsonl`).

Validation of one query, in this order (`Video.queries` keeps the survivors):
1. a sentence with no words, or a non-finite time: skipped;
2. end <= start: skipped;
3. start < 0 or end > duration: with `out_of_range="clip"` (the default, what the
   papers' code does) the time is clipped to [0, duration] and the clip is reported;
   a query left with end <= start after clipping is skipped. With
   `out_of_range="skip"` the query is skipped.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import json
import math
import os
from typing import Any, Iterable

from data_pipelines.words import split_words

OUT_OF_RANGE_POLICIES = ("clip", "skip")


class FormatError(ValueError):
  """A release file that cannot be read; the message names file, record and field."""

  def __init__(self, path: str, message: str, video_id: str | None = None,
               field: str | None = None):
    where = [os.fspath(path)]
    if video_id is not None:
      where.append(f"video {video_id!r}")
    if field is not None:
      where.append(f"field {field!r}")
    super().__init__(": ".join(where) + ": " + message)
    self.path, self.video_id, self.field = path, video_id, field


@dataclasses.dataclass(frozen=True)
class Query:
  """One sentence and its moment. `index` is its position in the release file; a
  query with several windows (`read_jsonl`) is one `Query` per window, all with the
  same index, sentence and `qid` (None in the formats without one)."""
  sentence: str
  start: float
  end: float
  index: int
  qid: int | str | None = None


@dataclasses.dataclass
class Video:
  video_id: str
  duration: float
  queries: list[Query]


@dataclasses.dataclass(frozen=True)
class Problem:
  """A record the build did not take as it was. `query_index` None: whole video."""
  split: str
  video_id: str
  query_index: int | None
  action: str  # "skipped" or "clipped"
  reason: str
  detail: str = ""


class BuildReport:
  """Every skipped or clipped record of a build, with per-split counts."""

  def __init__(self):
    self.problems: list[Problem] = []
    self.kept: dict[str, dict[str, int]] = {}

  def add(self, problem: Problem) -> None:
    self.problems.append(problem)

  def count_kept(self, split: str, videos: int, queries: int) -> None:
    self.kept[split] = {"videos": videos, "queries": queries}

  def counts(self, action: str) -> dict[str, int]:
    """`{reason: number of records}` for one action, e.g. `counts("skipped")`."""
    return dict(collections.Counter(
        p.reason for p in self.problems if p.action == action))

  def to_json(self) -> dict[str, Any]:
    return {
        "kept": self.kept,
        "skipped": self.counts("skipped"),
        "clipped": self.counts("clipped"),
        "records": [dataclasses.asdict(p) for p in self.problems],
    }

  def summary(self) -> str:
    """A few human-readable lines: kept per split, then skipped/clipped by reason."""
    lines = [f"  {split}: {c['videos']} videos, {c['queries']} queries"
             for split, c in self.kept.items()]
    for action in ("skipped", "clipped"):
      counts = self.counts(action)
      total = sum(counts.values())
      lines.append(f"  {action}: {total} records" + ("" if total else " (none)"))
      lines.extend(f"    {n:6d}  {reason}" for reason, n in sorted(counts.items()))
    return "\n".join(lines)


def validate_query(split: str, video_id: str, duration: float, index: int,
                   sentence: Any, start: float, end: float, report: BuildReport,
                   out_of_range: str = "clip") -> Query | None:
  """Applies the module's validation rules; returns the query or None if skipped."""
  if out_of_range not in OUT_OF_RANGE_POLICIES:
    raise ValueError(f"out_of_range must be one of {OUT_OF_RANGE_POLICIES}, "
                     f"got {out_of_range!r}")

  def problem(action, reason, detail=""):
    report.add(Problem(split, video_id, index, action, reason, detail))

  if not isinstance(sentence, str) or not split_words(sentence):
    problem("skipped", "empty sentence", repr(sentence))
    return None
  if not (math.isfinite(start) and math.isfinite(end)):
    problem("skipped", "non-finite time", f"[{start}, {end}]")
    return None
  if end <= start:
    problem("skipped", "end <= start", f"[{start}, {end}]")
    return None
  if start < 0 or end > duration:
    reason = "start before 0" if start < 0 else "end beyond duration"
    detail = f"[{start}, {end}] in a video of {duration:.3f} s"
    if out_of_range == "skip":
      problem("skipped", reason, detail)
      return None
    start, end = max(start, 0.0), min(end, duration)
    if end <= start:
      problem("skipped", "start beyond duration", detail)
      return None
    problem("clipped", reason, detail)
  return Query(sentence.strip(), float(start), float(end), index)


def read_tacos(path: str, split: str, report: BuildReport,
               out_of_range: str = "clip") -> list[Video]:
  """TACoS split file (times in frames) -> videos with times in seconds."""
  videos = []
  for vid, entry in _load_json_videos(path).items():
    fps = _number(entry, "fps", path, vid)
    num_frames = _number(entry, "num_frames", path, vid)
    if fps <= 0:
      raise FormatError(path, f"must be > 0, got {fps}", vid, "fps")
    videos.append(_video(split, vid, num_frames / fps, entry, path, report,
                         out_of_range, time_scale=1.0 / fps))
  return videos


def read_activitynet(path: str, split: str, report: BuildReport,
                     out_of_range: str = "clip") -> list[Video]:
  """ActivityNet Captions split file (times in seconds) -> videos."""
  return [
      _video(split, vid, _number(entry, "duration", path, vid), entry, path, report,
             out_of_range, time_scale=1.0)
      for vid, entry in _load_json_videos(path).items()
  ]


def read_charades(txt_path: str, csv_path: str, split: str, report: BuildReport,
                  out_of_range: str = "clip") -> list[Video]:
  """Charades-STA `VID START END##sentence` lines + durations csv -> videos.

  Queries are grouped by video in order of first appearance; `Query.index` counts
  a video's lines in file order.
  """
  durations = read_charades_durations(csv_path)
  lines_by_video: dict[str, list[tuple[int, str, float, float]]] = {}
  for line_number, line in enumerate(_read_lines(txt_path), start=1):
    if not line.strip():
      continue
    vid, start, end, sentence = _parse_charades_line(line, txt_path, line_number)
    lines_by_video.setdefault(vid, []).append((line_number, sentence, start, end))
  videos = []
  for vid, lines in lines_by_video.items():
    if vid not in durations:
      for index, (line_number, *_) in enumerate(lines):
        report.add(Problem(split, vid, index, "skipped", "video missing from durations csv",
                           f"{os.path.basename(txt_path)} line {line_number}"))
      continue
    duration = durations[vid]
    if not _positive_finite(duration):
      report.add(Problem(split, vid, None, "skipped", "bad duration", repr(duration)))
      continue
    queries = [validate_query(split, vid, duration, index, sentence, start, end, report,
                              out_of_range)
               for index, (_, sentence, start, end) in enumerate(lines)]
    videos.append(Video(vid, duration, [q for q in queries if q is not None]))
  return videos


def read_jsonl(path: str, split: str, report: BuildReport,
               out_of_range: str = "clip") -> list[Video]:
  """Moment-DETR JSON lines -> videos, in order of their first line.

  Each kept window of a query is one `Query` whose `index` is the query's line in
  the file (0-based; blank lines count) and whose `qid` is the line's. Checks, each a
  skipped record in `report` (`query_index` = that line):
  - a line without `relevant_windows` (an unlabeled line), or with an empty list;
  - a `qid` seen on an earlier line; a `duration` other than the video's earlier
    lines'; a query text (stripped) that an earlier line of the same video has
    (duplicates would be merged by `duplicate_sentences="merge"`);
  - then each window as `validate_query` rules (empty query, end <= start, outside
    the video: clipped or skipped), and a window equal to an earlier one of the query.
  A file none of whose lines has `relevant_windows` (e.g. QVHighlights' test split)
  is a `FormatError`: it has nothing to train or evaluate on. So is a line that is
  not a JSON object, lacks `qid`, `query`, `vid` or `duration`, or has a field of the
  wrong type.
  """
  videos: dict[str, Video] = {}
  qids: dict[Any, int] = {}
  texts: dict[tuple[str, str], Any] = {}
  labeled = False
  for index, line in enumerate(_read_lines(path)):
    if not line.strip():
      continue
    entry = _jsonl_entry(line, path, index + 1)
    qid, vid, query, duration = (entry["qid"], entry["vid"], entry["query"],
                                 float(entry["duration"]))

    def skip(reason, detail=""):
      report.add(Problem(split, vid, index, "skipped", reason,
                         f"qid {qid!r}" + (f": {detail}" if detail else "")))

    if "relevant_windows" not in entry:
      skip("no relevant_windows (unlabeled)")
      continue
    labeled = True
    windows = entry["relevant_windows"]
    if (not isinstance(windows, list) or not all(
        isinstance(w, list) and len(w) == 2 and all(_is_number(t) for t in w)
        for w in windows)):
      raise FormatError(path, f"line {index + 1}: expected a list of [start, end] pairs "
                        f"of numbers, got {windows!r}", vid, "relevant_windows")
    video = videos.get(vid)
    if not windows:
      skip("no relevant window")
    elif qid in qids:
      skip("qid repeated", f"first on line {qids[qid] + 1}")
    elif not _positive_finite(duration):
      skip("bad duration", repr(duration))
    elif video is not None and duration != video.duration:
      skip("duration differs from the video's earlier lines",
           f"{duration} s, not {video.duration} s")
    elif (vid, query.strip()) in texts:
      skip("query repeated in the video", f"as qid {texts[vid, query.strip()]!r}")
    else:
      qids[qid] = index
      if video is None:
        video = videos[vid] = Video(vid, duration, [])
      kept: list[tuple[float, float]] = []
      for start, end in windows:
        q = validate_query(split, vid, duration, index, query, float(start), float(end),
                           report, out_of_range)
        if q is not None and (q.start, q.end) in kept:
          skip("repeated window", f"[{start}, {end}]")
        elif q is not None:
          kept.append((q.start, q.end))
          video.queries.append(dataclasses.replace(q, qid=qid))
        if q is None and not split_words(query):
          break  # an empty query: reported once, not once per window
      if kept:
        texts[vid, query.strip()] = qid
  if not labeled:
    raise FormatError(path, "no line has relevant_windows: an unlabeled split (e.g. "
                      "QVHighlights' test) cannot be built; leave it out")
  return list(videos.values())


# The required fields of a JSON-lines record: (check, what the check wants).
JSONL_FIELDS = {
    "vid": (lambda x: isinstance(x, str) and bool(x), "a non-empty string"),
    "qid": (lambda x: isinstance(x, (int, str)) and not isinstance(x, bool),
            "an int or a string"),
    "query": (lambda x: isinstance(x, str), "a string"),
    "duration": (lambda x: _is_number(x), "a number"),
}


def _jsonl_entry(line: str, path: str, line_number: int) -> dict:
  """One line of a JSON-lines file, its required fields checked."""
  try:
    entry = json.loads(line)
  except json.JSONDecodeError as e:
    raise FormatError(path, f"line {line_number}: not valid JSON: {e}") from e
  if not isinstance(entry, dict):
    raise FormatError(path, f"line {line_number}: expected an object, got "
                      f"{type(entry).__name__}")
  vid = entry.get("vid")
  for field, (ok, kind) in JSONL_FIELDS.items():
    if field not in entry:
      raise FormatError(path, f"line {line_number}: missing", vid, field)
    if not ok(entry[field]):
      raise FormatError(path, f"line {line_number}: not {kind}: {entry[field]!r}", vid,
                        field)
  return entry


def read_charades_durations(csv_path: str) -> dict[str, float]:
  """`Charades_v1_*.csv` -> `{video id: length in seconds}`."""
  try:
    with open(csv_path, newline="", encoding="utf-8") as f:
      rows = list(csv.DictReader(f))
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise FormatError(csv_path, f"cannot read: {e}") from e
  if not rows or not {"id", "length"} <= set(rows[0]):
    raise FormatError(csv_path, "needs the columns 'id' and 'length'")
  durations = {}
  for row in rows:
    try:
      durations[row["id"]] = float(row["length"])
    except (TypeError, ValueError) as e:
      raise FormatError(csv_path, f"not a number: {row['length']!r}", row["id"],
                        "length") from e
  return durations


def _parse_charades_line(line: str, path: str, line_number: int):
  where = f"line {line_number}"
  if "##" not in line:
    raise FormatError(path, f"{where}: expected 'VID START END##sentence'", field="##")
  head, sentence = line.split("##", 1)
  parts = head.split()
  if len(parts) != 3:
    raise FormatError(path, f"{where}: expected 'VID START END' before '##', got {head!r}",
                      field="VID START END")
  vid = parts[0]
  try:
    start, end = float(parts[1]), float(parts[2])
  except ValueError as e:
    raise FormatError(path, f"{where}: times are not numbers: {head!r}", vid,
                      "START END") from e
  return vid, start, end, sentence.strip()


def _video(split, vid, duration, entry, path, report, out_of_range, time_scale):
  """One JSON entry -> Video, validating its timestamps and sentences."""
  timestamps = _list(entry, "timestamps", path, vid)
  sentences = _list(entry, "sentences", path, vid)
  if len(timestamps) != len(sentences):
    raise FormatError(path, f"{len(timestamps)} timestamps but {len(sentences)} sentences",
                      vid, "timestamps")
  if not _positive_finite(duration):
    report.add(Problem(split, vid, None, "skipped", "bad duration", repr(duration)))
    return Video(vid, duration, [])
  queries = []
  for index, (span, sentence) in enumerate(zip(timestamps, sentences)):
    if (not isinstance(span, (list, tuple)) or len(span) != 2
        or not all(_is_number(t) for t in span)):
      raise FormatError(path, f"entry {index} is not a [start, end] pair of numbers: "
                        f"{span!r}", vid, "timestamps")
    query = validate_query(split, vid, duration, index, sentence, span[0] * time_scale,
                           span[1] * time_scale, report, out_of_range)
    if query is not None:
      queries.append(query)
  return Video(vid, duration, queries)


def _load_json_videos(path: str) -> dict[str, dict]:
  try:
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
  except json.JSONDecodeError as e:
    raise FormatError(path, f"not valid JSON (truncated?): {e}") from e
  except (OSError, UnicodeDecodeError) as e:
    raise FormatError(path, f"cannot read: {e}") from e
  if not isinstance(data, dict):
    raise FormatError(path, f"expected an object of videos, got {type(data).__name__}")
  for vid, entry in data.items():
    if not isinstance(entry, dict):
      raise FormatError(path, f"expected an object, got {type(entry).__name__}", vid)
  return data


def _read_lines(path: str) -> Iterable[str]:
  try:
    with open(path, encoding="utf-8") as f:
      return f.read().splitlines()
  except (OSError, UnicodeDecodeError) as e:
    raise FormatError(path, f"cannot read: {e}") from e


def _number(entry: dict, field: str, path: str, vid: str) -> float:
  if field not in entry:
    raise FormatError(path, "missing", vid, field)
  if not _is_number(entry[field]):
    raise FormatError(path, f"not a number: {entry[field]!r}", vid, field)
  return float(entry[field])


def _list(entry: dict, field: str, path: str, vid: str) -> list:
  if field not in entry:
    raise FormatError(path, "missing", vid, field)
  if not isinstance(entry[field], list):
    raise FormatError(path, f"expected a list, got {type(entry[field]).__name__}", vid,
                      field)
  return entry[field]


def _is_number(x: Any) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool)


def _positive_finite(x: float) -> bool:
  return math.isfinite(x) and x > 0
