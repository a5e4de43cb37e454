"""TFDS builders; importing this package registers them with TFDS by name."""

from data_pipelines.builders.activitynet_captions import ActivitynetCaptions
from data_pipelines.builders.charades_sta import CharadesSta
from data_pipelines.builders.jsonl import Jsonl
from data_pipelines.builders.qvhighlights import Qvhighlights
from data_pipelines.builders.qvhighlights_shaped import QvhighlightsShaped
from data_pipelines.builders.synthetic import Synthetic
from data_pipelines.builders.tacos import Tacos
from data_pipelines.builders.tacos_shaped import TacosShaped

BUILDERS = {
    "tacos": Tacos,
    "activitynet_captions": ActivitynetCaptions,
    "charades_sta": CharadesSta,
    "synthetic": Synthetic,
    "tacos_shaped": TacosShaped,
    "jsonl": Jsonl,
    "qvhighlights": Qvhighlights,
    "qvhighlights_shaped": QvhighlightsShaped,
}
