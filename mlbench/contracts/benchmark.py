"""What a benchmark is: a dataset, a pinned label set, a split rule and a training recipe.

A benchmark plugin registers ``factory() -> Benchmark``. The runner reads nothing else from the
plugin: the dataset is named (a dataset plugin), the mapping from an image's raw findings to the
benchmark's labels is a function the benchmark owns, and the recipe names the other plugins.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping


# The built-in preprocessor that only resizes: a recipe naming it crops nothing, whatever ``crop`` says.
RESIZE_ONLY = "resize"


@dataclass(frozen=True)
class Recipe:
    """How models are trained and combined. Defaults are the paper's Table 2."""

    backbones: tuple[str, ...]
    image_size: int = 224
    batch_size: int = 32
    max_epochs: int = 350
    patience: int = 25
    min_delta: float = 0.001
    lr: float = 1e-4
    head_units: tuple[int, ...] = (512, 512)
    dropout: float = 0.2
    freeze_fraction: float = 0.1
    pretrained: bool = True
    in_chans: int = 1
    loss: str = "weighted-bce"
    ensembles: tuple[str, ...] = ("ctp", "ptc-lw", "ptc-mode")
    explainer: str = "gradcam"
    crop: bool = True
    preprocessor: str = "resize"  # the cropping preprocessor when crop=True; --no-crop uses "resize"
    preprocessor_options: Mapping[str, Any] = field(default_factory=dict)
    augment: bool = True
    threshold: float = 0.5
    # "fixed": decide at ``threshold`` (the paper). "val-f1": also report decision metrics at
    # per-label thresholds chosen on the validation split (extra *_tuned leaderboard rows).
    threshold_rule: str = "fixed"
    sampler: str = "uniform"  # the training batch order (a sampler plugin); the split never changes
    sampler_options: Mapping[str, Any] = field(default_factory=dict)
    # The stages training goes through (a schedule plugin: "standard" is the one stage above), and
    # the post-hoc adjuster fitted on each backbone's validation outputs ("none": none).
    schedule: str = "standard"
    schedule_options: Mapping[str, Any] = field(default_factory=dict)
    adjuster: str = "none"
    adjuster_options: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    # Extra keyword options per backbone plugin name, e.g. {"densenet201": {"drop_rate": 0.1}}.
    backbone_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    loss_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def crops(self) -> bool:
        """Whether images are really cropped: ``crop`` asks for it, and only a cropping preprocessor does it."""
        return self.crop and self.preprocessor != RESIZE_ONLY

    @property
    def variant(self) -> str:
        """The paper's setting, as really done: ``crop+aug`` (Tables 8-11), ``crop`` (6-7), ``none`` (4-5)."""
        if self.crops:
            return "crop+aug" if self.augment else "crop"
        return "aug" if self.augment else "none"

    @property
    def active_preprocessor(self) -> str:
        return self.preprocessor if self.crop else RESIZE_ONLY

    def replace(self, **changes: Any) -> "Recipe":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["variant"] = self.variant
        return _plain(d)


# The recipe of Liz et al. 2023 (Table 2), which every family reuses so results compare across them.
# Its five ImageNet backbones under their timm names (PAPER-FACTS gives the mapping).
PAPER_BACKBONES = ("densenet201", "efficientnet_b0", "inception_v3", "inception_resnet_v2", "legacy_xception")
# The crop is a family's own: PadChest names its lung-crop preprocessor, NIH sets crop=False.
PAPER_RECIPE = Recipe(backbones=PAPER_BACKBONES)

# The demo profile: the same code path, sized for 2 CPU cores in about 3 minutes. Three narrowed
# ResNets (mlbench.plugins.backbones.SLIM_BACKBONES: each a third of resnet10t's cost per step, and
# from scratch as accurate here) at 64 px, in batches of 64 (cheaper per image on a CPU than 32). Trained
# from scratch they need a larger learning rate than the paper's fine-tuning, and nothing is frozen:
# freezing keeps pretrained generic filters, and these start from random weights.
DEMO_RECIPE = Recipe(
    backbones=("resnet10t-slim", "resnet18d-slim", "resnet14t-slim"),
    image_size=64,
    batch_size=64,
    max_epochs=8,
    patience=5,  # the small validation split makes epoch-to-epoch losses noisy
    lr=2e-3,
    freeze_fraction=0.0,
    pretrained=False,
)


def _plain(obj: Any) -> Any:
    """JSON-friendly copy (tuples and mappings become lists and dicts)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# A sha256 as mlbench writes it: 64 lowercase hex digits.
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class CanonicalSource:
    """One published label file a benchmark is defined on, and the split the benchmark makes of it.

    ``content_sha256`` hashes the decompressed bytes, so the file as published and its gzipped copy
    are the same source (:func:`mlbench.data.canonical.content_sha256`). Only a run on a canonical
    source, split to ``split_hash``, enters the benchmark's own leaderboard.
    """

    release: str  # the file's published name, e.g. "Data_Entry_2017_v2020.csv"
    content_sha256: str
    split_hash: str  # mlbench.data.splits' split hash of this benchmark on this file


# -- shared findings: which of a benchmark's labels name a finding other benchmarks label too ---------
# How a label relates to its vocabulary term. EXACT: the label is the finding (its positives and
# negatives are the finding's). NARROWER: the label is one kind of the finding (child -> parent, e.g.
# a hiatal hernia is a hernia): its positives are the finding's, but an image with another kind of
# it counts as negative. A label broader than every term (a parent of the finding) maps to none.
EXACT = "exact"
NARROWER = "narrower"
RELATIONS = (EXACT, NARROWER)

# Vocabularies mlbench knows the terms of, so that a misspelt term is refused instead of silently
# sharing nothing. "torchxrayvision": the common pathology names torchxrayvision relabels its
# datasets onto (its default_pathologies, and the further names its loaders use), the field's de-facto
# shared names. A vocabulary not listed here is taken as given.
KNOWN_VOCABULARIES: dict[str, frozenset[str]] = {
    "torchxrayvision": frozenset({
        "Atelectasis", "Consolidation", "Infiltration", "Pneumothorax", "Edema", "Emphysema", "Fibrosis",
        "Effusion", "Pneumonia", "Pleural_Thickening", "Cardiomegaly", "Nodule", "Mass", "Hernia", "Lung Lesion",
        "Fracture", "Lung Opacity", "Enlarged Cardiomediastinum", "Granuloma", "Flattened Diaphragm",
        "Bronchiectasis", "Aortic Elongation", "Scoliosis", "Hilar Enlargement", "Tuberculosis", "Air Trapping",
        "Costophrenic Angle Blunting", "Aortic Atheromatosis", "Hemidiaphragm Elevation", "Support Devices", "Tube",
    }),
}


@dataclass(frozen=True)
class Finding:
    """The term of a shared vocabulary one benchmark label names, how (``relation``) and why (``why``)."""

    term: str
    relation: str = EXACT
    why: str = ""


@dataclass(frozen=True)
class SharedFindings:
    """A benchmark's labels mapped onto the terms of one named vocabulary of findings.

    ``labels``: benchmark label -> :class:`Finding`; a label not listed names no shared finding.
    ``left_out``: label -> why it maps to no term (a choice worth saying, e.g. a parent of the
    finding); shown where an external evaluation lists the labels it could not score. Two
    benchmarks share a finding when their labels map to the same term of the same vocabulary
    (:mod:`mlbench.data.findings` pairs them).
    """

    vocabulary: str
    labels: Mapping[str, Finding] = field(default_factory=dict)
    left_out: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Benchmark:
    """A pinned task. ``targets(findings)`` maps one image's raw findings to its benchmark labels.

    ``scoring_profile`` names how the benchmark's literature ranks entries (a profile of
    :mod:`mlbench.results.profiles`: ``paper`` ranks by macro AUC, ``cxr-lt`` by macro AUPRC, then
    AUC, then F1): compare, grid tables, boards and ``leaderboard show`` rank by it unless a run or a
    command names another (``--profile``).
    """

    name: str
    version: str
    dataset: str
    labels: tuple[str, ...]
    targets: Callable[[Iterable[str]], Iterable[str]]
    recipe: Recipe
    demo_recipe: Recipe
    split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    split_seed: int = 0
    description: str = ""
    demo_options: Mapping[str, Any] = field(default_factory=dict)
    # The published leaderboard shipped as package data, e.g.
    # ``importlib.resources.files("my_plugin") / "leaderboards" / "my-bench.parquet"`` (None: no board).
    published_board: Any = None
    # A pinned test set (an official split): ``fixed_test(frame) -> bool per image`` over the
    # benchmark's images (RECORD_COLUMNS and the reader's extra columns). Those images are the test
    # split; the rest are split into train and val in the ratio of the first two fractions, and the
    # third fraction is unused. None: all three subsets are stratified (mlbench.data.splits).
    fixed_test: Callable[[Any], Any] | None = None
    # Keep images that carry none of the labels (all-zero rows) instead of dropping them; an official
    # test set that counts its normal films needs them.
    keep_unlabelled: bool = False
    # The rule the pinned labels were selected by, when there is one: every label with at least this
    # many images (Liz et al. 2023: 200). ``datasets inspect`` compares it with the pinned labels; None
    # (a benchmark whose labels are simply given, like NIH's 14) shows no such comparison.
    label_rule_min_images: int | None = None
    # The published label files the benchmark is defined on (several when a release was reissued).
    # Empty: the benchmark pins none, and its own board takes any real run that passes submit's checks.
    canonical_sources: tuple[CanonicalSource, ...] = ()
    # The scoring profile the benchmark is ranked under (see above).
    scoring_profile: str = "paper"
    # Labels chosen by the data, not pinned (a CSV and an image folder): ``labels`` is empty here and a
    # run takes the reader's ``Records.labels`` (:func:`with_data_labels`); its split file keeps them.
    labels_from_data: bool = False
    # The labels that name findings of a shared vocabulary (external validation on another benchmark,
    # ``mlbench evaluate``); None: the benchmark shares none.
    findings: SharedFindings | None = None

    def __post_init__(self) -> None:
        if self.labels_from_data and self.labels:
            raise ValueError(f"benchmark '{self.name}': labels_from_data takes its labels from the data; "
                             "leave labels empty")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"benchmark '{self.name}': duplicate labels")
        if abs(sum(self.split_fractions) - 1.0) > 1e-9:
            raise ValueError(f"benchmark '{self.name}': split fractions must sum to 1, got {self.split_fractions}")
        if self.label_rule_min_images is not None and (isinstance(self.label_rule_min_images, bool)
                                                       or not isinstance(self.label_rule_min_images, int)
                                                       or self.label_rule_min_images < 1):
            raise ValueError(f"benchmark '{self.name}': label_rule_min_images must be a positive integer or None")
        if self.fixed_test is not None and self.split_fractions[0] + self.split_fractions[1] <= 0:
            raise ValueError(f"benchmark '{self.name}': a pinned test set needs positive train/val fractions, "
                             f"got {self.split_fractions}")
        if not isinstance(self.scoring_profile, str) or not self.scoring_profile.strip():
            raise ValueError(f"benchmark '{self.name}': scoring_profile must be a profile name, e.g. 'paper'")
        self._check_canonical_sources()
        self._check_findings()

    def _check_findings(self) -> None:
        shared = self.findings
        if shared is None:
            return
        where = f"benchmark '{self.name}': findings"
        if not isinstance(shared, SharedFindings):
            raise ValueError(f"{where} must be a SharedFindings, got {type(shared).__name__}")
        if not isinstance(shared.vocabulary, str) or not shared.vocabulary.strip():
            raise ValueError(f"{where}.vocabulary must name a vocabulary, e.g. 'torchxrayvision'")
        known = KNOWN_VOCABULARIES.get(shared.vocabulary)
        own = set(self.labels)
        exact: dict[str, str] = {}
        for label, finding in dict(shared.labels).items():
            if not self.labels_from_data and label not in own:
                raise ValueError(f"{where}.labels: '{label}' is not one of the benchmark's labels")
            if not isinstance(finding, Finding):
                raise ValueError(f"{where}.labels['{label}'] is a {type(finding).__name__}, expected a Finding")
            if finding.relation not in RELATIONS:
                raise ValueError(f"{where}.labels['{label}'].relation {finding.relation!r}: expected one of "
                                 f"{', '.join(RELATIONS)}")
            if known is not None and finding.term not in known:
                raise ValueError(f"{where}.labels['{label}'].term {finding.term!r} is not a term of vocabulary "
                                 f"'{shared.vocabulary}'; its terms: {', '.join(sorted(known))}")
            if finding.relation == EXACT:
                if finding.term in exact:  # which label is the finding would be ambiguous
                    raise ValueError(f"{where}: labels '{exact[finding.term]}' and '{label}' are both exactly "
                                     f"'{finding.term}'; at most one label is exactly a term")
                exact[finding.term] = label
        for label in dict(shared.left_out):
            if label in shared.labels:
                raise ValueError(f"{where}: '{label}' is both mapped and left out")
            if not self.labels_from_data and label not in own:
                raise ValueError(f"{where}.left_out: '{label}' is not one of the benchmark's labels")

    def _check_canonical_sources(self) -> None:
        sources = self.canonical_sources
        if isinstance(sources, CanonicalSource) or not isinstance(sources, (tuple, list)):
            raise ValueError(f"benchmark '{self.name}': canonical_sources must be a tuple of CanonicalSource")
        object.__setattr__(self, "canonical_sources", tuple(sources))  # a list is accepted, stored as a tuple
        releases = []
        for i, pin in enumerate(self.canonical_sources):
            if not isinstance(pin, CanonicalSource):
                raise ValueError(f"benchmark '{self.name}': canonical_sources[{i}] is a {type(pin).__name__}, "
                                 "expected a CanonicalSource")
            if not isinstance(pin.release, str) or not pin.release.strip() or any(c in pin.release for c in "/\\\0"):
                raise ValueError(f"benchmark '{self.name}': canonical_sources[{i}].release must be a file name "
                                 "(no folder), e.g. 'labels.csv'")
            for name in ("content_sha256", "split_hash"):
                value = getattr(pin, name)
                if not isinstance(value, str) or not _SHA256.fullmatch(value):
                    raise ValueError(f"benchmark '{self.name}': canonical_sources[{i}].{name} must be a sha256 "
                                     "of 64 lowercase hex digits")
            releases.append(pin.release)
        repeated = sorted({r for r in releases if releases.count(r) > 1})
        if repeated:
            raise ValueError(f"benchmark '{self.name}': canonical_sources name release {', '.join(repeated)} "
                             "more than once")


def with_data_labels(benchmark: Benchmark, labels: Iterable[str] | None, where: str = "the dataset") -> Benchmark:
    """``benchmark`` with the labels its data defines, when it takes them from the data; else itself."""
    if not benchmark.labels_from_data:
        return benchmark
    if not labels:
        raise ValueError(f"benchmark '{benchmark.name}' takes its labels from the data, but {where} gave none")
    return dataclasses.replace(benchmark, labels=tuple(labels), labels_from_data=False)
