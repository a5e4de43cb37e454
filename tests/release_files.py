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
