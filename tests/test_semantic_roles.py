import json

import pytest

from data_pipelines import semantic_roles as sr

# AllenNLP SRL predictor output lines (its `predict` command's JSON lines), by hand.
ALLENNLP_LINES = [
    {"verbs": [
        {"verb": "takes", "description": "[ARG0: The person] [V: takes] [ARG1: a knife] "
         "[ARGM-DIR: out of the drawer] and cuts the onion .",
         "tags": ["B-ARG0", "I-ARG0", "B-V", "B-ARG1", "I-ARG1", "B-ARGM-DIR", "I-ARGM-DIR",
                  "I-ARGM-DIR", "I-ARGM-DIR", "O", "O", "O", "O", "O"]},
        {"verb": "cuts", "description": "[ARG0: The person] takes a knife out of the "
         "drawer and [V: cuts] [ARG1: the onion] .",
         "tags": ["B-ARG0", "I-ARG0", "O", "O", "O", "O", "O", "O", "O", "O", "B-V",
                  "B-ARG1", "I-ARG1", "O"]}],
     "words": ["The", "person", "takes", "a", "knife", "out", "of", "the", "drawer", "and",
               "cuts", "the", "onion", "."]},
    {"verbs": [], "words": ["A", "man", "in", "a", "red", "shirt", "."]},
    {"verbs": [{"verb": "is", "description": "The woman [V: is] ...",
                "tags": ["O", "O", "B-V", "O", "O"]},
               {"verb": "smiling", "description": "[ARG0: The woman] is [V: smiling] .",
                "tags": ["B-ARG0", "I-ARG0", "O", "B-V", "O"]}],
     "words": ["The", "woman", "is", "smiling", "."]},
]


def write(tmp_path, records):
  path = tmp_path / "srl.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in records))
  return str(path)


def test_reads_allennlp_lines(tmp_path):
  trees = sr.read_allennlp_srl(write(tmp_path, ALLENNLP_LINES))
  assert set(trees) == {"thepersontakesaknifeoutofthedrawerandcutstheonion",
                        "amaninaredshirt", "thewomanissmiling"}
  first = trees[sr.sentence_key("The person takes a knife out of the drawer and cuts "
                                "the onion.")]
  # "the person" is an argument of both verbs: one node, two edges.
  assert first == sr.RoleTree(
      verbs=(("takes",), ("cuts",)),
      nouns=(("the", "person"), ("a", "knife"), ("out", "of", "the", "drawer"),
             ("the", "onion")),
      edges=((0, 0), (0, 1), (0, 2), (1, 0), (1, 3)))
  # No predicate: the sentence is the one phrase.
  assert trees["amaninaredshirt"] == sr.RoleTree(
      verbs=(("a", "man", "in", "a", "red", "shirt"),), nouns=(), edges=())
  # An auxiliary with no arguments is still a verb node.
  assert trees["thewomanissmiling"] == sr.RoleTree(
      verbs=(("is",), ("smiling",)), nouns=(("the", "woman"),), edges=((1, 0),))


def test_sentence_key_ignores_tokenization():
  assert sr.sentence_key("The person's knife.") == sr.sentence_key("the person 's knife")


def test_limits_on_verbs_and_nouns():
  frames = [([f"v{i}"], [[f"n{i}a"], [f"n{i}b"]]) for i in range(6)]
  tree = sr.build_tree(["x"], frames, max_verbs=4, max_nouns=6)
  assert tree.verbs == (("v0",), ("v1",), ("v2",), ("v3",))
  assert tree.nouns == (("n0a",), ("n0b",), ("n1a",), ("n1b",), ("n2a",), ("n2b",))
  assert tree.edges == ((0, 0), (0, 1), (1, 2), (1, 3), (2, 4), (2, 5))


def test_bad_lines_name_the_file_and_line(tmp_path):
  records = [ALLENNLP_LINES[1], {"words": ["a", "b"], "verbs": [{"verb": "b",
                                                                 "tags": ["O"]}]}]
  with pytest.raises(ValueError, match=r"srl.jsonl:2: .*1 tags for 2 words"):
    sr.read_allennlp_srl(write(tmp_path, records))
  with pytest.raises(ValueError, match=r"srl.jsonl:1: "):
    sr.read_allennlp_srl(write(tmp_path, [{"words": ["a"], "verbs": [{"tags": ["X"]}]}]))


def doc(words, pos, deps, heads):
  from spacy.tokens import Doc
  from spacy.vocab import Vocab
  return Doc(Vocab(), words=words, pos=pos, deps=deps, heads=heads)


def test_spacy_extractor_on_hand_built_docs():
  # "the chef picks up the cutting board and washes it"
  parsed = doc(["the", "chef", "picks", "up", "the", "cutting", "board", "and", "washes",
                "it"],
               ["DET", "NOUN", "VERB", "ADP", "DET", "NOUN", "NOUN", "CCONJ", "VERB", "PRON"],
               ["det", "nsubj", "ROOT", "prt", "det", "compound", "dobj", "cc", "conj",
                "dobj"],
               [1, 2, 2, 2, 6, 6, 2, 2, 2, 8])
  assert sr.tree_from_doc(parsed) == sr.RoleTree(
      verbs=(("picks", "up"), ("washes",)), nouns=(("chef",), ("cutting", "board")),
      edges=((0, 0), (0, 1)))
  # A noun under a preposition attaches to the verb above it; no verb: one phrase.
  pp = doc(["person", "sits", "on", "the", "chair"], ["NOUN", "VERB", "ADP", "DET", "NOUN"],
           ["nsubj", "ROOT", "prep", "det", "pobj"], [1, 1, 1, 4, 2])
  assert sr.tree_from_doc(pp).nouns == (("person",), ("chair",))
  none = doc(["a", "red", "car"], ["DET", "ADJ", "NOUN"], ["det", "amod", "ROOT"], [2, 2, 2])
  assert sr.tree_from_doc(none) == sr.RoleTree((("a", "red", "car"),), (), ())


def test_spacy_pipeline_without_a_parser_is_an_error(tmp_path):
  import spacy
  spacy.blank("en").to_disk(tmp_path / "blank")
  with pytest.raises(ValueError, match="needs a tagger or morphologizer and a parser"):
    sr.spacy_trees(["a man walks"], str(tmp_path / "blank"))
