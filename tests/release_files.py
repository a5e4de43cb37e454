"""Release files for the builder tests: a few real videos' annotations with random
features in the release formats."""

VIDEOS_PER_SPLIT = 3


def take(d: dict, n: int) -> dict:
  return dict(list(d.items())[:n])


def write_charades_release(directory, annotations, lines_per_split: int,
                           feature_file: str, dim: int, seed: int = 0) -> None:
  """Charades-STA release files in `directory`: the first sentences of each split of
  the real `charades_sta_{split}.txt`, their videos' rows of `Charades_v1_{split}.csv`,
  and `feature_file` (HDF5, `f[vid]` -> [clips, dim], about one clip per second)."""
  import csv
  import h5py
  import numpy as np
  rng = np.random.default_rng(seed)
  durations = {}
  for split in ("train", "test"):
    lines = (annotations / "charades_sta" / f"charades_sta_{split}.txt").read_text(
        ).splitlines()[:lines_per_split]
    (directory / f"charades_sta_{split}.txt").write_text("\n".join(lines) + "\n")
    videos = {line.split()[0] for line in lines}
    with open(annotations / "charades_sta" / f"Charades_v1_{split}.csv") as src, \
        open(directory / f"Charades_v1_{split}.csv", "w", newline="") as dst:
      reader = csv.DictReader(src)
      writer = csv.DictWriter(dst, reader.fieldnames)
      writer.writeheader()
      for row in reader:
        if row["id"] in videos:
          writer.writerow(row)
          durations[row["id"]] = float(row["length"])
  with h5py.File(directory / feature_file, "w") as f:
    for video, feats in random_features(durations, dim, rng).items():
      f[video] = feats


def random_features(durations: dict, dim: int, rng) -> dict:
  """`{video: duration}` -> `{video: [clips, dim]}`, d/2 to d + 2 clips (d seconds)."""
  import numpy as np
  return {video: rng.normal(size=(int(rng.integers(max(2, int(d / 2)), int(d) + 3)), dim)
                            ).astype(np.float32) for video, d in durations.items()}


# The jsonl release's problem lines (`write_jsonl_release`) and what the build report
# says of each: reason -> count.
JSONL_SKIPPED = {"empty sentence": 1, "no relevant_windows (unlabeled)": 1,
                 "video missing from features file": 1, "features do not span the video": 1,
                 "query repeated in the video": 1, "qid repeated": 1,
                 "start beyond duration": 1, "end <= start": 1}
JSONL_CLIPPED = {"end beyond duration": 1}


def write_jsonl_release(directory, annotations, lines_per_split: int = 6,
                        seed: int = 0) -> dict:
  """Moment-DETR JSON lines in `directory`: `highlight_{train,val}_release.jsonl`, the
  first lines of the real QVHighlights files, val with problem lines added (one per
  `JSONL_SKIPPED`/`JSONL_CLIPPED` entry), and two feature folders `slowfast/` (D 8)
  and `clip/` (D 4, one clip more) of `<vid>.npz` (`features`, 2-second clips).

  Returns {"lines": {split: [record, ...] as written}, "features": {folder: {vid:
  array}}, "windows": {qid: the windows the build keeps}}."""
  import json
  import math
  import numpy as np
  rng = np.random.default_rng(seed)
  lines = {}
  for split in ("train", "val"):
    path = annotations / "qvhighlights" / f"highlight_{split}_release.jsonl"
    lines[split] = [json.loads(line)
                    for line in path.read_text().splitlines()[:lines_per_split]]
  val = lines["val"]
  windows = {r["qid"]: [list(map(float, w)) for w in r["relevant_windows"]]
             for split in lines for r in lines[split]}
  # Real lines with a window past the end (clipped), one after it and one of no
  # length (both skipped).
  val[1]["relevant_windows"] = val[1]["relevant_windows"] + [[140, 160]]
  windows[val[1]["qid"]].append([140.0, 150.0])
  val[2]["relevant_windows"] = val[2]["relevant_windows"] + [[200, 210], [30, 30]]
  unlabeled = {k: v for k, v in val[3].items() if k != "relevant_windows"}
  val += [
      {**val[2], "qid": 900001, "query": "  "},
      {**unlabeled, "qid": 900002, "query": "a line without windows"},
      {**val[3], "qid": 900003, "vid": "no_features_vid"},
      {**val[3], "qid": 900004, "vid": "short_features_vid"},
      {**val[4], "qid": 900005},  # the same text in the same video
      {**val[5], "qid": val[0]["qid"], "query": "a repeated qid"},
  ]
  for split, records in lines.items():
    (directory / f"highlight_{split}_release.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records))
  durations = {r["vid"]: r["duration"] for records in lines.values() for r in records}
  feats = {"slowfast": {}, "clip": {}}
  for vid, duration in durations.items():
    if vid == "no_features_vid":
      continue
    clips = 10 if vid == "short_features_vid" else math.ceil(duration / 2)
    feats["slowfast"][vid] = rng.normal(size=(clips, 8)).astype(np.float32)
    feats["clip"][vid] = rng.normal(size=(clips + 1, 4)).astype(np.float32)
  for folder, arrays in feats.items():
    (directory / folder).mkdir()
    for vid, array in arrays.items():
      np.savez(directory / folder / f"{vid}.npz", features=array)
  return {"lines": lines, "features": feats, "windows": windows}
