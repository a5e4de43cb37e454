"""Semantic role trees of sentences (FVMR Sec. 3.3, after HGR, Chen et al. 2020).

The root is the whole sentence; each verb (predicate) is a child of the root; each
argument phrase of a verb is a noun node under it. A phrase shared by two verbs is
one node with two edges. Trees keep at most `max_verbs` verbs (in sentence order) and
`max_nouns` nouns (in order of first appearance under the kept verbs). A sentence
with no verb gets one verb node holding the whole sentence and no nouns, so its one
phrase is the sentence itself.

Two sources:
- `read_allennlp_srl`: the JSON lines AllenNLP's SRL predictor writes, one per
  sentence: `{"words": [...], "verbs": [{"verb": "opens", "tags": ["B-ARG0", "I-ARG0",
  "B-V", "B-ARG1", "I-ARG1", "O"], ...}, ...]}` (BIO tags; V = the predicate, ARG0-5 and
  ARGM-* = its arguments). This is how a user brings real parses.
- `tree_from_doc` / `spacy_trees`: a dependency-based extractor over spaCy: verbs are
  the VERB tokens (with their particles), nouns the NOUN/PROPN tokens (with their
  compounds), each attached to its nearest VERB ancestor.
Node words go through `data_pipelines.words.split_words`, the datasets' word rule, so
they index the same vocabulary; `sentence_key` matches a parse to a dataset sentence
whatever the two tokenizers did with punctuation.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Iterable, Mapping, Sequence

import numpy as np

from data_pipelines.words import PAD_ID, WordVocab, split_words

MAX_VERBS, MAX_NOUNS = 4, 6  # FVMR Sec. 4.2


@dataclasses.dataclass(frozen=True)
class RoleTree:
  """Verb and noun nodes as their words; `edges` = (verb index, noun index)."""
  verbs: tuple[tuple[str, ...], ...]
  nouns: tuple[tuple[str, ...], ...]
  edges: tuple[tuple[int, int], ...]


def one_phrase(sentence: str) -> RoleTree:
  """The tree of a sentence without a predicate: the sentence as its one phrase."""
  return RoleTree((tuple(split_words(sentence)),), (), ())


def encode_trees(trees: Sequence[RoleTree], vocab: WordVocab, max_verbs: int,
                 max_nouns: int, max_words: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Trees -> word ids of their verb nodes `[n, max_verbs, max_words]` and noun nodes
  `[n, max_nouns, max_words]` (0 = padding: a node is valid where its first id is not
  0) and the verb-noun edges `[n, max_verbs, max_nouns]` bool. Nodes and words past
  the limits are dropped, with their edges."""
  verbs = np.full((len(trees), max_verbs, max_words), PAD_ID, np.int32)
  nouns = np.full((len(trees), max_nouns, max_words), PAD_ID, np.int32)
  edges = np.zeros((len(trees), max_verbs, max_nouns), bool)
  for t, tree in enumerate(trees):
    for out, nodes, limit in ((verbs, tree.verbs, max_verbs), (nouns, tree.nouns, max_nouns)):
      for i, words in enumerate(nodes[:limit]):
        ids = vocab.ids(words[:max_words])
        out[t, i, :len(ids)] = ids
    for v, n in tree.edges:
      if v < max_verbs and n < max_nouns:
        edges[t, v, n] = True
  return verbs, nouns, edges


def sentence_key(text: str) -> str:
  """The letters and digits of `text`, lower-cased: equal for a sentence and for its
  tokens joined by spaces (`"person's"` and `"person 's"`)."""
  return "".join(re.findall(r"[a-z0-9]", text.lower()))


def build_tree(sentence_words: Sequence[str], frames: Iterable[tuple[Sequence[str],
                                                                  Sequence[Sequence[str]]]],
               max_verbs: int = MAX_VERBS, max_nouns: int = MAX_NOUNS) -> RoleTree:
  """A tree from (verb tokens, [argument tokens, ...]) frames in sentence order."""
  verbs, nouns, edges = [], [], []
  for verb_tokens, arguments in frames:
    verb = tuple(split_words(" ".join(verb_tokens)))
    if not verb or len(verbs) == max_verbs:
      continue
    verbs.append(verb)
    for tokens in arguments:
      noun = tuple(split_words(" ".join(tokens)))
      if not noun:
        continue
      if noun not in nouns:
        if len(nouns) == max_nouns:
          continue
        nouns.append(noun)
      edges.append((len(verbs) - 1, nouns.index(noun)))
  if not verbs:
    return one_phrase(" ".join(sentence_words))
  return RoleTree(tuple(verbs), tuple(nouns), tuple(dict.fromkeys(edges)))


def _bio_spans(tags: Sequence[str]) -> list[tuple[str, list[int]]]:
  """BIO tags -> [(role, token indices)] in order; an I- without its B- starts a span."""
  spans = []
  for i, tag in enumerate(tags):
    if tag == "O":
      continue
    if "-" not in tag:
      raise ValueError(f"bad BIO tag {tag!r}")
    prefix, role = tag.split("-", 1)
    if prefix == "I" and spans and spans[-1][0] == role and spans[-1][1][-1] == i - 1:
      spans[-1][1].append(i)
    elif prefix in ("B", "I"):
      spans.append((role, [i]))
    else:
      raise ValueError(f"bad BIO tag {tag!r}")
  return spans


def tree_from_allennlp(record: Mapping, max_verbs: int = MAX_VERBS,
                       max_nouns: int = MAX_NOUNS) -> RoleTree:
  """One AllenNLP SRL output record -> its tree. Frames are ordered by the position
  of their predicate."""
  words = record["words"]
  frames = []
  for frame in record.get("verbs", []):
    tags = frame["tags"]
    if len(tags) != len(words):
      raise ValueError(f"verb {frame.get('verb')!r}: {len(tags)} tags for {len(words)} words")
    spans = _bio_spans(tags)
    verb = [i for role, idx in spans if role == "V" for i in idx]
    if verb:
      arguments = [[words[i] for i in idx] for role, idx in spans if role != "V"]
      frames.append((verb[0], [words[i] for i in verb], arguments))
  frames.sort(key=lambda f: f[0])
  return build_tree(words, [(v, a) for _, v, a in frames], max_verbs, max_nouns)


def read_allennlp_srl(path: str, max_verbs: int = MAX_VERBS,
                      max_nouns: int = MAX_NOUNS) -> dict[str, RoleTree]:
  """An AllenNLP SRL predictions file (JSON lines) -> {sentence_key: tree}. Errors
  name the file and line."""
  trees = {}
  with open(path) as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        record = json.loads(line)
        trees[sentence_key(" ".join(record["words"]))] = tree_from_allennlp(
            record, max_verbs, max_nouns)
      except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}:{number}: not an AllenNLP SRL record ({e!r})") from None
  return trees


def srl_record_from_doc(doc) -> dict:
  """A parsed spaCy `Doc` (POS tags and dependencies) -> an AllenNLP SRL record: one
  frame per VERB token, tagged V with its `prt` particles; each NOUN/PROPN token (with
  its `compound` dependents) is an argument (ARG0, ARG1, ... in order) of its nearest
  VERB ancestor."""
  def governing_verb(token):
    while token.head.i != token.i:
      token = token.head
      if token.pos_ == "VERB":
        return token
    return None

  words = [t.text for t in doc]
  tags = {t.i: ["O"] * len(words) for t in doc if t.pos_ == "VERB"}
  for verb_index, frame in tags.items():
    verb = doc[verb_index]
    for part in [verb] + [c for c in verb.children if c.dep_ == "prt"]:
      frame[part.i] = "B-V"
  for token in doc:
    if token.pos_ in ("NOUN", "PROPN") and token.dep_ != "compound":
      verb = governing_verb(token)
      if verb is not None:
        frame = tags[verb.i]
        role = f"ARG{len({t.split('-', 1)[1] for t in frame if t.startswith('B-ARG')})}"
        parts = sorted([token] + [c for c in token.children if c.dep_ == "compound"],
                       key=lambda t: t.i)
        for n, part in enumerate(parts):
          frame[part.i] = f"{'B' if n == 0 else 'I'}-{role}"
  return {"words": words,
          "verbs": [{"verb": doc[i].text, "tags": frame} for i, frame in sorted(tags.items())]}


def tree_from_doc(doc, max_verbs: int = MAX_VERBS, max_nouns: int = MAX_NOUNS) -> RoleTree:
  """The tree of a parsed spaCy `Doc`: that of its `srl_record_from_doc`."""
  return tree_from_allennlp(srl_record_from_doc(doc), max_verbs, max_nouns)


def spacy_trees(sentences: Sequence[str], pipeline: str = "en_core_web_sm",
                max_verbs: int = MAX_VERBS, max_nouns: int = MAX_NOUNS
                ) -> dict[str, RoleTree]:
  """{sentence_key: tree} of `sentences` parsed by an installed spaCy pipeline (a
  package name or a directory) with a tagger and a parser."""
  import spacy
  nlp = spacy.load(pipeline)
  names = set(nlp.pipe_names)
  if "parser" not in names or not names & {"tagger", "morphologizer"}:
    raise ValueError(f"spaCy pipeline {pipeline!r} (components {sorted(names)}) needs a "
                     "tagger or morphologizer and a parser to find verbs and nouns")
  return {sentence_key(s): tree_from_doc(doc, max_verbs, max_nouns)
          for s, doc in zip(sentences, nlp.pipe(sentences))}
