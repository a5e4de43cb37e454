import json

import pytest

from data_pipelines import annotations as ann


def write_json(path, data):
  path.write_text(json.dumps(data))
  return str(path)


# --- the real release files (../shared/data/annotations) -------------------------------

@pytest.mark.parametrize("split,videos,queries", [
    ("train", 75, 9790), ("val", 27, 4436), ("test", 25, 4001)])
def test_real_tacos_counts(real_annotations, split, videos, queries):
  report = ann.BuildReport()
  got = ann.read_tacos(str(real_annotations / "tacos" / f"{split}.json"), split, report)
  assert len(got) == videos
  assert sum(len(v.queries) for v in got) == queries
  assert report.counts("skipped") == {}
  for v in got:
    for q in v.queries:
      assert 0 <= q.start < q.end <= v.duration


def test_real_tacos_times_in_seconds(real_annotations):
  raw = json.loads((real_annotations / "tacos" / "train.json").read_text())
  vid = next(iter(raw))
  video = ann.read_tacos(str(real_annotations / "tacos" / "train.json"), "train",
                         ann.BuildReport())[0]
  assert video.video_id == vid
  assert video.duration == pytest.approx(raw[vid]["num_frames"] / raw[vid]["fps"])
  first = video.queries[0]
  assert first.start == pytest.approx(raw[vid]["timestamps"][0][0] / raw[vid]["fps"])
  assert first.sentence == raw[vid]["sentences"][0].strip()


def test_real_activitynet_train_reports_bad_records(real_annotations):
  report = ann.BuildReport()
  videos = ann.read_activitynet(str(real_annotations / "activitynet_captions" / "train.json"),
                                "train", report)
  assert len(videos) == 10009
  skipped = report.counts("skipped")
  assert skipped == {"end <= start": 4}  # the README's 4 records with end <= start
  assert sum(len(v.queries) for v in videos) == 37421 - 4
  assert report.counts("clipped")["end beyond duration"] > 0  # clipped, but reported


def test_real_charades(real_annotations):
  d = real_annotations / "charades_sta"
  report = ann.BuildReport()
  videos = ann.read_charades(str(d / "charades_sta_test.txt"), str(d / "Charades_v1_test.csv"),
                             "test", report)
  kept = sum(len(v.queries) for v in videos)
  problems = len([p for p in report.problems if p.action == "skipped"])
  assert kept + problems == 3720
  assert all(q.end <= v.duration for v in videos for q in v.queries)
  assert report.counts("clipped")["end beyond duration"] > 0


# --- validation of single records ------------------------------------------------------

@pytest.mark.parametrize("sentence,start,end,reason", [
    ("a man walks", 5.0, 5.0, "end <= start"),
    ("a man walks", 6.0, 5.0, "end <= start"),
    ("   ", 1.0, 2.0, "empty sentence"),
    ("?!", 1.0, 2.0, "empty sentence"),
    (None, 1.0, 2.0, "empty sentence"),
    ("a man walks", float("nan"), 2.0, "non-finite time"),
    ("a man walks", 11.0, 12.0, "start beyond duration"),
])
def test_unusable_records_are_skipped_and_reported(sentence, start, end, reason):
  report = ann.BuildReport()
  assert ann.validate_query("train", "v1", 10.0, 3, sentence, start, end, report) is None
  (problem,) = report.problems
  assert (problem.action, problem.reason, problem.video_id, problem.query_index) == (
      "skipped", reason, "v1", 3)


def test_out_of_range_is_clipped_and_reported_or_skipped():
  report = ann.BuildReport()
  q = ann.validate_query("train", "v1", 10.0, 0, "a man walks", -1.0, 12.0, report)
  assert (q.start, q.end) == (0.0, 10.0)
  assert report.counts("clipped") == {"start before 0": 1}
  report = ann.BuildReport()
  q = ann.validate_query("train", "v1", 10.0, 0, "a man walks", 2.0, 12.0, report)
  assert report.counts("clipped") == {"end beyond duration": 1} and q.end == 10.0
  report = ann.BuildReport()
  assert ann.validate_query("train", "v1", 10.0, 0, "a man walks", 2.0, 12.0, report,
                            out_of_range="skip") is None
  assert report.counts("skipped") == {"end beyond duration": 1}
  with pytest.raises(ValueError, match="out_of_range"):
    ann.validate_query("train", "v1", 10.0, 0, "x", 1, 2, report, out_of_range="drop")


def test_summary_lists_reasons():
  report = ann.BuildReport()
  ann.validate_query("train", "v1", 10.0, 0, "", 1, 2, report)
  report.count_kept("train", 1, 0)
  text = report.summary()
  assert "train: 1 videos, 0 queries" in text and "empty sentence" in text
  assert report.to_json()["records"][0]["video_id"] == "v1"


# --- malformed files stop with an error naming file, video and field --------------------

@pytest.mark.parametrize("entry,field", [
    ({"fps": 25, "timestamps": [[0, 10]], "sentences": ["a b"]}, "num_frames"),
    ({"num_frames": 100, "fps": "fast", "timestamps": [[0, 10]], "sentences": ["a b"]}, "fps"),
    ({"num_frames": 100, "fps": 0, "timestamps": [[0, 10]], "sentences": ["a b"]}, "fps"),
    ({"num_frames": 100, "fps": 25, "timestamps": [[0, 10]], "sentences": "a b"}, "sentences"),
    ({"num_frames": 100, "fps": 25, "timestamps": [[0, 10]], "sentences": []}, "timestamps"),
    ({"num_frames": 100, "fps": 25, "timestamps": [[0, 10, 20]], "sentences": ["a"]},
     "timestamps"),
])
def test_tacos_malformed_entries(tmp_path, entry, field):
  path = write_json(tmp_path / "train.json", {"s1-d1.avi": entry})
  with pytest.raises(ann.FormatError) as e:
    ann.read_tacos(path, "train", ann.BuildReport())
  assert e.value.field == field and e.value.video_id == "s1-d1.avi"
  assert "train.json" in str(e.value) and "s1-d1.avi" in str(e.value) and field in str(e.value)


def test_truncated_json(tmp_path):
  path = tmp_path / "val_1.json"
  path.write_text('{"v_a": {"duration": 10, "timestamps": [[0, 1]], "sent')
  with pytest.raises(ann.FormatError, match="val_1.json.*not valid JSON"):
    ann.read_activitynet(str(path), "val", ann.BuildReport())


def test_json_not_an_object(tmp_path):
  path = write_json(tmp_path / "train.json", [1, 2])
  with pytest.raises(ann.FormatError, match="expected an object"):
    ann.read_activitynet(path, "train", ann.BuildReport())


def test_bad_duration_skips_the_video(tmp_path):
  path = write_json(tmp_path / "train.json", {
      "v_a": {"duration": 0, "timestamps": [[0, 1]], "sentences": ["a b"]}})
  report = ann.BuildReport()
  (video,) = ann.read_activitynet(path, "train", report)
  assert video.queries == [] and report.counts("skipped") == {"bad duration": 1}


def test_charades_malformed_and_missing(tmp_path):
  csv = tmp_path / "Charades_v1_test.csv"
  csv.write_text("id,subject,length\nAAAAA,x,30.5\nBBBBB,y,12\n")
  txt = tmp_path / "charades_sta_test.txt"
  txt.write_text("AAAAA 1.0 5.5##a person opens a door.\nZZZZZ 1 2##someone sits.\n"
                 "BBBBB 3 20##a person laughs.\n\n")
  report = ann.BuildReport()
  videos = ann.read_charades(str(txt), str(csv), "test", report)
  assert [(v.video_id, len(v.queries)) for v in videos] == [("AAAAA", 1), ("BBBBB", 1)]
  assert videos[0].queries[0].sentence == "a person opens a door."
  assert report.counts("skipped") == {"video missing from durations csv": 1}
  assert report.counts("clipped") == {"end beyond duration": 1}

  txt.write_text("AAAAA 1.0 five##a person opens a door.\n")
  with pytest.raises(ann.FormatError, match="line 1.*not numbers"):
    ann.read_charades(str(txt), str(csv), "test", ann.BuildReport())
  txt.write_text("AAAAA 1.0 5.0 a person opens a door.\n")
  with pytest.raises(ann.FormatError, match="line 1"):
    ann.read_charades(str(txt), str(csv), "test", ann.BuildReport())
  csv.write_text("id,length\nAAAAA,long\n")
  with pytest.raises(ann.FormatError, match="AAAAA.*length"):
    ann.read_charades_durations(str(csv))
  csv.write_text("id,duration\nAAAAA,3\n")
  with pytest.raises(ann.FormatError, match="'id' and 'length'"):
    ann.read_charades_durations(str(csv))
